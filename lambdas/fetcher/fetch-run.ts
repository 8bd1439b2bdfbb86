/**
 * The fetch use case: keyset-paged reads from Socrata, raw rows packed into Firehose records,
 * the checkpoint advanced only after Firehose accepted every row up to it, bad rows quarantined,
 * and a cursor returned when the invocation's time budget runs out.
 *
 * Collaborators (Socrata client, delivery, checkpoint and state stores, clock, remaining time)
 * are arguments, so tests run this against real local servers without module mocking.
 */
import { faultPoint } from '../../runtime/fault-points';
import type { ObjectStore } from '../../runtime/object-store';
import type { Checkpoint, CheckpointStore, KeysetPosition } from './checkpoint-store';
import type { DeliveryStats } from './firehose-delivery';

const NO_DELIVERY: DeliveryStats = { records: 0, bytes: 0, calls: 0, retriedRecords: 0 };
import { pageProblem } from './page-invariants';
import { writeQuarantine, type QuarantinedRow } from './quarantine';
import { RawRowSerializer } from './raw-row';
import { MAX_RECORD_BYTES, packRecords } from './record-packer';
import type { PageQuery, SourceRow } from './socrata-client';

export type FetchMode = 'incremental' | 'full-refresh';

export interface FetchStats {
  invocations: number;
  pages: number;
  rowsFetched: number;
  rowsDelivered: number;
  rowsQuarantined: number;
  quarantinedMissingKey: number;
  quarantinedTooLarge: number;
  firehoseRecords: number;
  firehoseCalls: number;
  bytesDelivered: number;
  firehoseRetriedRecords: number;
  sourceRetries: number;
}

/** Everything the next invocation needs; a few hundred bytes, far below the 256 KiB state limit. */
export interface FetchCursor {
  version: 1;
  mode: FetchMode;
  /** The next page starts after this row; null: from the beginning. */
  position: KeysetPosition | null;
  /** Etag of the checkpoint this run last wrote or read; null when none existed. */
  checkpointEtag: string | null;
  quarantineSequence: number;
  startedAt: string;
  stats: FetchStats;
}

export interface FetchInput {
  runId: string;
  mode?: FetchMode;
  cursor?: FetchCursor | null;
}

export interface FetchOutput {
  runId: string;
  done: boolean;
  /** Pass back unchanged while `done` is false; null once done. */
  cursor: FetchCursor | null;
  stats: FetchStats & { checkpoint: KeysetPosition | null };
}

export interface FetchSettings {
  datasetName: string;
  primaryKey: string;
  pointColumns: readonly string[];
  pageSize: number;
  lookbackMinutes: number;
  timeBudgetMarginMs: number;
  maxRecordBytes?: number;
}

export interface FetchLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface FetchDeps {
  source: { fetchPage(query: PageQuery): Promise<SourceRow[]> };
  delivery: { deliver(records: Buffer[]): Promise<DeliveryStats> };
  checkpoints: CheckpointStore;
  /** Where quarantine files go (the raw bucket or its local mirror). */
  stateStore: ObjectStore;
  clock: () => Date;
  remainingTimeMs: () => number;
  logger?: FetchLogger;
  /** Source retries observed so far (the client counts them); read at the end of each page. */
  sourceRetries?: () => number;
}

export const SELECT_ALL = ':*,*';
export const KEYSET_ORDER = ':updated_at,:id';

const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** `$where` selecting rows strictly after a keyset position in `:updated_at, :id` order. */
export function keysetWhere(p: KeysetPosition): string {
  const t = quote(p.updatedAt);
  return `:updated_at > ${t} OR (:updated_at = ${t} AND :id > ${quote(p.id)})`;
}

export const emptyStats = (): FetchStats => ({
  invocations: 0,
  pages: 0,
  rowsFetched: 0,
  rowsDelivered: 0,
  rowsQuarantined: 0,
  quarantinedMissingKey: 0,
  quarantinedTooLarge: 0,
  firehoseRecords: 0,
  firehoseCalls: 0,
  bytesDelivered: 0,
  firehoseRetriedRecords: 0,
  sourceRetries: 0,
});

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

function validateCursor(c: unknown): FetchCursor {
  const x = c as Partial<FetchCursor> | null;
  if (
    !x ||
    x.version !== 1 ||
    (x.mode !== 'incremental' && x.mode !== 'full-refresh') ||
    typeof x.quarantineSequence !== 'number' ||
    typeof x.stats !== 'object' ||
    (x.position !== null && (typeof x.position?.updatedAt !== 'string' || typeof x.position?.id !== 'string'))
  ) {
    throw new InvalidCursorError(`Fetcher cursor is not one this fetcher returned: ${JSON.stringify(c).slice(0, 300)}`);
  }
  return x as FetchCursor;
}

/** Where an incremental run starts: the checkpoint, moved back by the lookback window. */
export function startPosition(checkpoint: KeysetPosition | undefined, lookbackMinutes: number): KeysetPosition | null {
  if (!checkpoint) return null;
  if (lookbackMinutes <= 0) return { updatedAt: checkpoint.updatedAt, id: checkpoint.id };
  const t = Date.parse(checkpoint.updatedAt);
  if (Number.isNaN(t)) throw new Error(`Checkpoint updatedAt "${checkpoint.updatedAt}" is not a timestamp; cannot apply the lookback window`);
  // id '' sorts before every id: the whole timestamp group at the lookback start is re-read.
  return { updatedAt: new Date(t - lookbackMinutes * 60_000).toISOString(), id: '' };
}

export async function runFetch(input: FetchInput, settings: FetchSettings, deps: FetchDeps): Promise<FetchOutput> {
  const { logger } = deps;
  const maxRecordBytes = settings.maxRecordBytes ?? MAX_RECORD_BYTES;
  let cursor: FetchCursor;
  if (input.cursor) {
    cursor = validateCursor(input.cursor);
  } else {
    const mode = input.mode ?? 'incremental';
    const stored = await deps.checkpoints.read();
    const position = mode === 'full-refresh' ? null : startPosition(stored?.checkpoint, settings.lookbackMinutes);
    cursor = {
      version: 1,
      mode,
      position,
      checkpointEtag: stored?.etag ?? null,
      quarantineSequence: 0,
      startedAt: deps.clock().toISOString(),
      stats: emptyStats(),
    };
    logger?.info('fetch started', { mode, from: position, checkpoint: stored?.checkpoint ?? null });
  }
  const stats = { ...emptyStats(), ...cursor.stats };
  stats.invocations++;
  const retriesBefore = deps.sourceRetries?.() ?? 0;
  let position = cursor.position;
  let etag = cursor.checkpointEtag;
  let quarantineSequence = cursor.quarantineSequence;

  const fetchAfter = (p: KeysetPosition | null): Promise<SourceRow[]> => {
    const page = deps.source.fetchPage({
      select: SELECT_ALL,
      order: KEYSET_ORDER,
      limit: settings.pageSize,
      ...(p ? { where: keysetWhere(p) } : {}),
      check: (rows) => pageProblem(rows, p, settings.pageSize),
    });
    // A prefetched page may fail while the current one is delivered: the failure is surfaced
    // when the page is awaited, not as an unhandled rejection.
    page.catch(() => undefined);
    return page;
  };
  const budgetLeft = (): boolean => deps.remainingTimeMs() > settings.timeBudgetMarginMs;

  /** A page whose records are on their way to Firehose; its checkpoint waits for them. */
  interface InFlight {
    delivery: Promise<DeliveryStats>;
    rows: number;
    delivered: number;
    position: KeysetPosition;
    at: Date;
  }
  // Pages complete strictly in order, so the checkpoint only ever moves past delivered rows.
  const complete = async (page: InFlight): Promise<void> => {
    const d = await page.delivery;
    stats.firehoseRecords += d.records;
    stats.firehoseCalls += d.calls;
    stats.bytesDelivered += d.bytes;
    stats.firehoseRetriedRecords += d.retriedRecords;
    stats.rowsDelivered += page.delivered;
    stats.rowsFetched += page.rows;
    stats.pages++;
    // Every row of the page is now accepted by Firehose or quarantined: the checkpoint may move.
    position = page.position;
    const checkpoint: Checkpoint = {
      dataset: settings.datasetName,
      updatedAt: position.updatedAt,
      id: position.id,
      runId: input.runId,
      writtenAt: page.at.toISOString(),
    };
    etag = await deps.checkpoints.write(checkpoint, etag ?? undefined);
    faultPoint('fetch:after-checkpoint-write');
    logger?.info('page delivered', { page: stats.pages, rows: page.rows, rowsFetched: stats.rowsFetched, position });
  };

  let done = false;
  let pending: Promise<SourceRow[]> | undefined = fetchAfter(position);
  let inFlight: InFlight | undefined;
  try {
    while (pending) {
      const rows = await pending;
      pending = undefined;
      const last = rows.length ? rows[rows.length - 1]! : undefined;
      const lastPosition = last ? positionOf(last, settings.datasetName) : undefined;
      const now = deps.clock();
      const { records, quarantined, delivered } = rows.length
        ? preparePage(rows, settings, input.runId, now, maxRecordBytes)
        : { records: [], quarantined: [], delivered: 0 };
      // Fetch the next page while this one is delivered (not while it is serialized: that is CPU
      // this process would not give the download anyway, and two parsed pages would be alive).
      // The end of the data is an empty page, not a short one: a portal may cap $limit below
      // what was asked, so a short page is followed by one more request.
      if (lastPosition && budgetLeft()) pending = fetchAfter(lastPosition);

      if (rows.length) {
        if (quarantined.length) {
          const { key, sequence } = await writeQuarantine(
            deps.stateStore, settings.datasetName, input.runId, quarantineSequence + 1, now, quarantined,
          );
          quarantineSequence = sequence;
          stats.rowsQuarantined += quarantined.length;
          stats.quarantinedMissingKey += quarantined.filter((q) => q.reason === 'missing_primary_key').length;
          stats.quarantinedTooLarge += quarantined.filter((q) => q.reason === 'row_too_large').length;
          logger?.warn('rows quarantined', { count: quarantined.length, key });
        }
        // This page's delivery overlaps the previous page's completion and the next page's preparation.
        const delivery = records.length ? deps.delivery.deliver(records) : Promise.resolve(NO_DELIVERY);
        delivery.catch(() => undefined); // surfaced when awaited in order
        if (inFlight) {
          // If this throws, the page just started is abandoned (never checkpointed): the
          // checkpoint must not pass the page that failed.
          const previous = inFlight;
          inFlight = undefined;
          await complete(previous);
        }
        inFlight = { delivery, rows: rows.length, delivered, position: lastPosition!, at: now };
      }
      if (!rows.length) {
        done = true;
        break;
      }
      if (!pending) break; // time budget spent
    }
    const last = inFlight;
    inFlight = undefined;
    if (last) await complete(last);
  } catch (err) {
    // The newest page, whose delivery was under way when something after it failed (the next
    // page's fetch, say), is checkpointed if its delivery succeeds, so the next run does not
    // redo it. Every earlier page is already complete, or the failure was its own.
    if (inFlight) await complete(inFlight).catch(() => undefined);
    throw err;
  }
  stats.sourceRetries += (deps.sourceRetries?.() ?? 0) - retriesBefore;

  const nextCursor: FetchCursor = { ...cursor, position, checkpointEtag: etag, quarantineSequence, stats };
  logger?.info(done ? 'fetch finished' : 'time budget reached; returning cursor', { stats, position });
  return { runId: input.runId, done, cursor: done ? null : nextCursor, stats: { ...stats, checkpoint: position } };
}

function positionOf(row: SourceRow, datasetName: string): KeysetPosition {
  const updatedAt = row[':updated_at'];
  const id = row[':id'];
  if (typeof updatedAt !== 'string' || typeof id !== 'string') {
    throw new Error(
      `Dataset ${datasetName}: the source returned a row without :updated_at/:id system fields ` +
        `(${JSON.stringify(row).slice(0, 200)}); the request must use $select=:*,*`,
    );
  }
  return { updatedAt, id };
}

function preparePage(rows: SourceRow[], settings: FetchSettings, runId: string, now: Date, maxRecordBytes: number) {
  const serializer = new RawRowSerializer({ pointColumns: settings.pointColumns, runId, ingestedAt: now.toISOString() });
  const lines: string[] = [];
  const lengths: number[] = [];
  const quarantined: QuarantinedRow[] = [];
  for (const row of rows) {
    positionOf(row, settings.datasetName);
    const key = row[settings.primaryKey];
    if (key === undefined || key === null || key === '') {
      quarantined.push({ reason: 'missing_primary_key', detail: `primary key "${settings.primaryKey}" is absent`, row });
      continue;
    }
    const line = serializer.line(row);
    const length = Buffer.byteLength(line, 'utf8');
    if (length > maxRecordBytes) {
      quarantined.push({ reason: 'row_too_large', detail: `${length} bytes > Firehose record limit ${maxRecordBytes}`, row });
      continue;
    }
    lines.push(line);
    lengths.push(length);
  }
  return { records: packRecords(lines, lengths, maxRecordBytes), quarantined, delivered: lines.length };
}
