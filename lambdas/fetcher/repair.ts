/**
 * The repair phase: rows the source has but curated lacks (the transform's
 * `keysets/<dataset>/<run-id>/missing-keys.jsonl.gz`, a JSON string per line, from reconciling curated with the key scan)
 * are fetched by key (`$where=<pk> in (...)`, `$select=:*,*`) and delivered to Firehose like any
 * row; the transform then runs again and merges them. The checkpoint is never touched: these rows
 * are out of `:updated_at` order, and the incremental position stays what the row fetch made it.
 */
import { gunzipSync } from 'node:zlib';
import type { ObjectStore } from '../../runtime/object-store';
import { decodeKeyList, keyListFormatOf } from '../../runtime/key-list';
import { missingKeysKey } from '../../runtime/storage-layout';
import type { DeliverOptions, DeliveryStats } from './firehose-delivery';
import { parseLine, type FetchSettings } from './fetch-run';
import { writeLargeRow } from './large-row';
import { keyProblem, writeQuarantine, type QuarantinedRow } from './quarantine';
import { checkedCursor, PhaseInvocation, type PhaseDeps } from './phase-runner';
import type { TimeBudgetExhaustedError } from './time-budget';
import { RawRowSerializer } from './raw-row';
import { MAX_RECORD_BYTES, packRecords } from './record-packer';
import type { KeyedRowSource, PositionOrder, SourceRow } from './sources/source-adapter';
import { StateError } from '../../runtime/pipeline-error';

export interface RepairStats {
  invocations: number;
  keysRequested: number;
  pages: number;
  rowsFetched: number;
  rowsDelivered: number;
  rowsQuarantined: number;
  /** Rows larger than a Firehose record, written as their own raw objects (in rowsDelivered too). */
  largeRowObjects: number;
  firehoseRecords: number;
  bytesDelivered: number;
  sourceRetries: number;
  timeBudgetDeferrals: number;
}

export interface RepairCursor<P = unknown> {
  version: 1;
  phase: 'repair';
  /** Index of the next key chunk to fetch. */
  chunk: number;
  /** Within that chunk, the next page starts after this row (a chunk's rows may span pages; the source's position). */
  position: P | null;
  quarantineSequence: number;
  stats: RepairStats;
  stalledInvocations?: number;
}

export interface RepairOutput<P = unknown> {
  runId: string;
  phase: 'repair';
  done: boolean;
  cursor: RepairCursor<P> | null;
  /** No missing-keys file for the run: nothing to repair. */
  skipped?: 'nothing to repair';
  stats: RepairStats;
}

export interface RepairDeps<P> extends PhaseDeps {
  source: KeyedRowSource<P>;
  delivery: { deliver(records: Buffer[], options?: DeliverOptions): Promise<DeliveryStats> };
  /** The raw bucket: the missing-keys file and quarantine files. */
  store: ObjectStore;
}

const emptyRepairStats = (): RepairStats => ({
  invocations: 0,
  keysRequested: 0,
  pages: 0,
  rowsFetched: 0,
  rowsDelivered: 0,
  rowsQuarantined: 0,
  largeRowObjects: 0,
  firehoseRecords: 0,
  bytesDelivered: 0,
  sourceRetries: 0,
  timeBudgetDeferrals: 0,
});


/**
 * A fetched page of repaired rows as Firehose records, with the row fetch's rules: a row without
 * a scalar primary key is quarantined; one larger than a Firehose record is returned apart, to be
 * written as its own raw object; the rest are raw rows.
 */
function preparePage(rows: SourceRow[], settings: FetchSettings, runId: string, now: Date, maxRecordBytes: number) {
  const serializer = new RawRowSerializer({ pointColumns: settings.pointColumns, runId, ingestedAt: now.toISOString() });
  const lines: string[] = [];
  const lengths: number[] = [];
  const quarantined: QuarantinedRow[] = [];
  const large: Array<{ row: SourceRow; line: string }> = [];
  for (const row of rows) {
    const problem = keyProblem(row, settings.primaryKey);
    if (problem) {
      quarantined.push(problem);
      continue;
    }
    const line = serializer.line(row);
    const length = Buffer.byteLength(line, 'utf8');
    if (length > maxRecordBytes) {
      large.push({ row, line });
      continue;
    }
    lines.push(line);
    lengths.push(length);
  }
  return { records: packRecords(lines, lengths, maxRecordBytes), quarantined, large, delivered: lines.length };
}

export class RepairError extends StateError {
  override name = 'RepairError';
}

function validateRepairCursor<P>(c: unknown, positions: PositionOrder<P>): RepairCursor<P> {
  const fits = (x: Partial<RepairCursor<P>>): boolean =>
    x.phase === 'repair' && typeof x.chunk === 'number' && typeof x.quarantineSequence === 'number' && (x.position === null || x.position === undefined || positions.is(x.position));
  return checkedCursor(c, 'Repair', fits, RepairError);
}

/** The keys of a run's missing-keys file; undefined when the transform wrote none. */
export async function readMissingKeys(store: ObjectStore, datasetName: string, runId: string): Promise<string[] | undefined> {
  // The earlier text format is read when no JSON-lines file exists (a run begun before the upgrade).
  let key = missingKeysKey({ name: datasetName }, runId);
  let obj = await store.get(key);
  if (!obj) {
    key = missingKeysKey({ name: datasetName }, runId, 'text-lines');
    obj = await store.get(key);
  }
  if (!obj) return undefined;
  let text: string;
  try {
    text = gunzipSync(obj.body).toString('utf8');
  } catch (err) {
    throw new RepairError(`Missing-keys file ${store.location}/${key} is not gzip (${(err as Error).message}); run the transform again to rewrite it`, { cause: err });
  }
  try {
    return decodeKeyList(text, keyListFormatOf(key), `${store.location}/${key}`);
  } catch (err) {
    throw new RepairError(`${(err as Error).message}; run the transform again to rewrite it`, { cause: err });
  }
}

export async function runRepair<P>(input: { runId: string; cursor?: RepairCursor<P> | null }, settings: FetchSettings, deps: RepairDeps<P>): Promise<RepairOutput<P>> {
  const { logger } = deps;
  const keys = await readMissingKeys(deps.store, settings.datasetName, input.runId);
  if (!keys) {
    return { runId: input.runId, phase: 'repair', done: true, cursor: null, skipped: 'nothing to repair', stats: emptyRepairStats() };
  }
  // The file is fixed for the run, so chunk indexes in the cursor stay valid across invocations.
  const chunks = deps.source.keyBatches(keys);
  const cursor: RepairCursor<P> = input.cursor
    ? validateRepairCursor(input.cursor, deps.source.positions)
    : { version: 1, phase: 'repair', chunk: 0, position: null, quarantineSequence: 0, stats: { ...emptyRepairStats(), keysRequested: keys.length } };
  const stats: RepairStats = { ...emptyRepairStats(), ...cursor.stats };
  stats.invocations++;
  const pagesBefore = stats.pages;
  const invocation = new PhaseInvocation(deps, settings.timeBudgetMarginMs);
  let { chunk, position, quarantineSequence } = cursor;
  const maxRecordBytes = settings.maxRecordBytes ?? MAX_RECORD_BYTES;
  const quarantine = async (rows: QuarantinedRow[], now: Date): Promise<void> => {
    const { sequence } = await writeQuarantine(deps.store, settings.datasetName, `${input.runId}-repair`, quarantineSequence + 1, now, rows);
    quarantineSequence = sequence;
    stats.rowsQuarantined += rows.length;
  };

  const deferred = await invocation.pages(async () => {
    if (chunk >= chunks.length) return true;
    const { rows, last } = await deps.source.readByKeys({ batch: chunks[chunk]!, after: position, limit: settings.pageSize, budgetMs: invocation.budgetMs });
    if (!rows.length) {
      chunk++;
      position = null;
      return chunk >= chunks.length;
    }
    const now = deps.clock();
    const { records, quarantined, large, delivered } = preparePage(rows, settings, input.runId, now, maxRecordBytes);
    if (quarantined.length) await quarantine(quarantined, now);
    // Before the position moves past them, like every row of the page.
    for (const l of large) await writeLargeRow(deps.store, settings.datasetName, input.runId, l.row, l.line, now);
    stats.largeRowObjects += large.length;
    stats.rowsDelivered += large.length;
    if (records.length) {
      const d = await deps.delivery.deliver(records, { budgetMs: invocation.budgetMs });
      stats.firehoseRecords += d.records;
      stats.bytesDelivered += d.bytes;
      if (d.rejected.length) {
        await quarantine(
          d.rejected.map((r) => ({ reason: 'firehose_rejected', detail: `${r.errorCode}: ${r.errorMessage}`, row: parseLine(r.line) })),
          now,
        );
      }
      stats.rowsDelivered += delivered - d.rejected.length;
    }
    stats.rowsFetched += rows.length;
    stats.pages++;
    // Only after delivery: a failure re-fetches this page, never skips it.
    position = last;
    return false;
  });
  stats.sourceRetries += invocation.retries();
  const done = chunk >= chunks.length;
  const stalledInvocations = invocation.stalls(stats, deferred, stats.pages > pagesBefore, cursor.stalledInvocations, (n, last) => repairStalled(settings.datasetName, n, last));

  logger?.info(done ? 'repair finished' : 'repair: time budget reached; returning cursor', { ...stats });
  return {
    runId: input.runId,
    phase: 'repair',
    done,
    cursor: done ? null : { version: 1, phase: 'repair', chunk, position, quarantineSequence, stats, stalledInvocations },
    stats,
  };
}

/** The run fails: the source keeps asking to wait longer than an invocation can. */
function repairStalled(datasetName: string, stalled: number, last: TimeBudgetExhaustedError): RepairError {
  return new RepairError(
    `Dataset ${datasetName}: ${stalled} repair invocations in a row ran out of time budget without completing a page (last: ${last.message}); re-run later`,
    { cause: last },
  );
}
