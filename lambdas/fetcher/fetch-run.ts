/**
 * The fetch use case: keyset-paged reads from Socrata, raw rows packed into Firehose records,
 * rows larger than a record written whole as their own raw objects (large-row.ts), the checkpoint
 * advanced only after every row up to it is in Firehose or the raw zone, bad rows quarantined,
 * and a cursor returned when the invocation's time budget runs out.
 *
 * A backfill or full refresh with many rows to read is split into ranges of the keyset order
 * (parallel-plan.ts), each read by its own stream inside this one invocation and delivered
 * straight to the raw zone (direct-delivery.ts); each range's progress is kept beside the
 * checkpoint (range-progress.ts) and the checkpoint moves once every range is complete.
 * Concurrency inside the invocation rather than a Step Functions Map: the streams share one
 * Lambda's network and CPU (a source stream is ~2.4 MB/s; a Lambda's link is many times that),
 * the state machine stays one loop, and a failed stream stops only this invocation, whose retry
 * resumes every range from its last delivered page (docs/fetcher.md measures and explains).
 *
 * Collaborators (Socrata client, delivery, checkpoint and state stores, clock, remaining time)
 * are arguments, so tests run this against real local servers without module mocking.
 */
import { DEFAULT_MAX_QUARANTINE_SHARE, DEFAULT_PARALLEL_MIN_ROWS, MAX_STREAMS } from '../../runtime/dataset-config';
import { faultPoint } from '../../runtime/fault-points';
import type { ObjectStore } from '../../runtime/object-store';
import { CheckpointConflictError, type Checkpoint, type CheckpointStore } from './checkpoint-store';
import { partialDeliveryStats, type DeliverOptions, type DeliveryStats, type RejectedRow } from './firehose-delivery';
import { isRangeState, RangeProgressStore, type RangeProgress, type RangeState } from './range-progress';
import { writeLargeRow } from './large-row';
import { keyProblem, writeQuarantine, type QuarantinedRow } from './quarantine';
import { RawRowSerializer, type PointColumnSpec } from './raw-row';
import { checkedCursor, PhaseInvocation, type FetchLogger, type PhaseDeps } from './phase-runner';
import { MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES, RecordBufferPool, RecordPacker } from './record-packer';
import { sameSource, showSource, type PositionOrder, type RowSource, type SourceProblem, type SourceRow } from './sources/source-adapter';
import { TimeBudgetExhaustedError } from './time-budget';
import { DataError, StateError } from '../../runtime/pipeline-error';

export type FetchMode = 'incremental' | 'full-refresh';

export interface FetchStats {
  invocations: number;
  pages: number;
  rowsFetched: number;
  rowsDelivered: number;
  rowsQuarantined: number;
  quarantinedMissingKey: number;
  /** Rows whose primary key is an object or array: no key the pipeline can store or look up. */
  quarantinedInvalidKey: number;
  /** Rows larger than a Firehose record, written as their own raw objects (counted in rowsDelivered too). */
  largeRowObjects: number;
  firehoseRecords: number;
  firehoseCalls: number;
  bytesDelivered: number;
  firehoseRetriedRecords: number;
  /** PutRecordBatch calls answered with throttling (whole or for some entries). */
  firehoseThrottledCalls: number;
  /** Rows Firehose permanently refused (e.g. InvalidArgument), quarantined with the error code. */
  quarantinedRejected: number;
  /** Source records that are not rows (a ragged CSV line, an invalid JSON line), quarantined with their text. */
  quarantinedMalformed: number;
  sourceRetries: number;
  /** Invocations that stopped early because a retry wait did not fit the time budget. */
  timeBudgetDeferrals: number;
  /** Streams the run read with at most (1: one keyset stream; K: a parallel backfill of K ranges). */
  streams: number;
  /** Objects a parallel backfill wrote straight to the raw zone (their bytes are in bytesDelivered). */
  directObjects: number;
  /** Source columns the dataset does not declare (schema drift), sorted, at most MAX_UNDECLARED_SHOWN. */
  undeclaredColumns: string[];
}

export type CountStat = Exclude<keyof FetchStats, 'undeclaredColumns'>;

export const MAX_UNDECLARED_SHOWN = 50;
/**
 * PutRecordBatch calls under way at once (each <= 500 records / 4 MiB): the fetcher's memory bound.
 * Two keep Firehose far ahead of a source (8 MiB per call round trip: 40 MB/s at 200 ms a call,
 * against ~10 MB/s from Socrata), and each call in flight holds ~10 MB (its records and body);
 * four measured ~16 MB more peak RSS for no speed (docs/bench.md).
 */
export const MAX_BATCHES_IN_FLIGHT = 2;
export const DEFAULT_BUDGET_CHECK_ROWS = 1_000;

/** Quarantined rows are written in files of at most this many rows. */
const QUARANTINE_SLICE_ROWS = 1_000;

/** Everything the next invocation needs; a few hundred bytes, far below the 256 KiB state limit. */
export interface FetchCursor<P = unknown> {
  version: 1;
  mode: FetchMode;
  /** The next page starts after this row (the source adapter's position); null: from the beginning. */
  position: P | null;
  /** Etag of the checkpoint this run last wrote or read; null when none existed. */
  checkpointEtag: string | null;
  quarantineSequence: number;
  startedAt: string;
  stats: FetchStats;
  /** Consecutive invocations that ran out of time budget before completing a page. */
  stalledInvocations?: number;
  /** A parallel backfill's ranges, each with how far it got (delivered rows, a cut page's too). */
  ranges?: RangeState<P>[];
  /** Etag of the range progress object this run last wrote. */
  rangesEtag?: string | null;
}

export interface FetchInput {
  runId: string;
  mode?: FetchMode;
  cursor?: FetchCursor | null;
}

export interface FetchOutput<P = unknown> {
  runId: string;
  done: boolean;
  /** Pass back unchanged while `done` is false; null once done. */
  cursor: FetchCursor<P> | null;
  /** `checkpoint`: the position the checkpoint holds after this invocation. */
  stats: FetchStats & { checkpoint: P | null };
}

export interface FetchSettings {
  datasetName: string;
  primaryKey: string;
  /** Point columns: by name (default derived names) or with the dataset's `coordinates` names. */
  pointColumns: readonly PointColumnSpec[];
  pageSize: number;
  lookbackMinutes: number;
  timeBudgetMarginMs: number;
  maxRecordBytes?: number;
  /** Fail when quarantined rows exceed this share of fetched rows (default 0.05). */
  maxQuarantineShare?: number;
  /** The dataset's declared columns; source columns outside them are reported as schema drift. */
  declaredColumns?: readonly string[];
  /**
   * Inside a page the time budget is read after every this many rows (default 1,000): reading it
   * per row would be a call per row, and 1,000 rows take well under a second even on a slow link,
   * far inside TIME_BUDGET_MARGIN_MS.
   */
  budgetCheckEveryRows?: number;
  /** Ranges a first run or full refresh is split into (1: one stream). */
  streams?: number;
  /** Ranges read at once (default: all of them); the per-source concurrency limit. */
  maxConcurrentStreams?: number;
  /** Fewer rows to read than this: one stream, whatever `streams` says (DEFAULT_PARALLEL_MIN_ROWS). */
  parallelMinRows?: number;
}

export type { FetchLogger } from './phase-runner';

/** Where packed records go: Firehose, or the raw zone directly (direct-delivery.ts). */
export interface RecordDelivery {
  deliver(records: Buffer[], options?: DeliverOptions): Promise<DeliveryStats>;
  /** Batches under way at once per stream; default MAX_BATCHES_IN_FLIGHT. */
  readonly batchesInFlight?: number;
  /** 'direct': counted as raw objects written, not Firehose records. */
  readonly kind?: string;
}

export interface FetchDeps<P> extends PhaseDeps {
  /** Without `planRanges` a run is one stream. Its identity is recorded with the checkpoint. */
  source: RowSource<P>;
  delivery: RecordDelivery;
  /** Where parallel streams deliver; default `delivery`. */
  parallelDelivery?: RecordDelivery;
  checkpoints: CheckpointStore;
  /** Where quarantine files go (the raw bucket or its local mirror). */
  stateStore: ObjectStore;
}

export const emptyStats = (): FetchStats => ({
  invocations: 0,
  pages: 0,
  rowsFetched: 0,
  rowsDelivered: 0,
  rowsQuarantined: 0,
  quarantinedMissingKey: 0,
  quarantinedInvalidKey: 0,
  largeRowObjects: 0,
  firehoseRecords: 0,
  firehoseCalls: 0,
  bytesDelivered: 0,
  firehoseRetriedRecords: 0,
  firehoseThrottledCalls: 0,
  quarantinedRejected: 0,
  quarantinedMalformed: 0,
  sourceRetries: 0,
  timeBudgetDeferrals: 0,
  streams: 0,
  directObjects: 0,
  undeclaredColumns: [],
});

export class InvalidCursorError extends StateError {
  override name = 'InvalidCursorError';
}

/** The stored checkpoint was read from another source (domain or dataset id). */
export class CheckpointSourceMismatchError extends StateError {
  override name = 'CheckpointSourceMismatchError';
}

/** Too many rows quarantined: the source is probably the wrong one, or broken. */
export class QuarantineShareError extends DataError {
  override name = 'QuarantineShareError';
}

function validateCursor<P>(c: unknown, positions: PositionOrder<P>): FetchCursor<P> {
  const fits = (x: Partial<FetchCursor<P>>): boolean =>
    (x.mode === 'incremental' || x.mode === 'full-refresh') &&
    typeof x.quarantineSequence === 'number' &&
    (x.position === null || positions.is(x.position)) &&
    (x.ranges === undefined || (Array.isArray(x.ranges) && x.ranges.length > 0 && x.ranges.every((r) => isRangeState(r, positions))));
  return checkedCursor(c, 'Fetcher', fits, InvalidCursorError);
}

/** How one stream reads and where its progress goes (see runStream in runFetch). */
interface StreamSpec<P> {
  /** Read after this row; null: from the beginning of the data. */
  from: P | null;
  /** The stream's last row (inclusive); null: to the end of the data. */
  until: P | null;
  delivery: RecordDelivery;
  /** This stream's batches under way (the delivery's batchesInFlight, else MAX_BATCHES_IN_FLIGHT). */
  inFlight: Set<Promise<void>>;
  /** Every row of a whole page (read at `at`) is delivered or quarantined: move the durable position past it. */
  commit(last: P, at: Date): Promise<void>;
  /** A page cut short (time budget, or another stream failed) is delivered: move only the cursor. */
  cut(last: P): void;
  /** Another stream failed: stop at the next row boundary. */
  stopped(): boolean;
}

/** The furthest of some positions in the source's order; null when all are null. */
const maxPosition = <P>(order: PositionOrder<P>, positions: readonly (P | null)[]): P | null =>
  positions.reduce<P | null>((m, p) => (p !== null && (m === null || order.compare(p, m) > 0) ? p : m), null);

/**
 * A page: its rows stream in and are packed into records; full batches go to the stream's
 * delivery while the download continues. Its checkpoint waits for every one of its batches.
 */
interface Page<P> {
  stream: StreamSpec<P>;
  rows: number;
  delivered: number;
  missingKey: number;
  invalidKey: number;
  malformed: number;
  large: number;
  /** The last row received (and packed or quarantined). */
  position: P | null;
  at: Date;
  serializer: RawRowSerializer;
  packer: RecordPacker;
  batch: Buffer[];
  batchBytes: number;
  quarantined: QuarantinedRow[];
  deliveries: Promise<DeliveryStats>[];
  quarantines: Promise<void>[];
  /** Writes of rows too large for a record; the checkpoint waits for them as for deliveries. */
  largeWrites: Promise<unknown>[];
}

/** How a stream (or all of them) ended this invocation. */
interface StreamEnd {
  done: boolean;
  deferred?: TimeBudgetExhaustedError;
}

export async function runFetch<P>(input: FetchInput, settings: FetchSettings, deps: FetchDeps<P>): Promise<FetchOutput<P>> {
  return new FetchRun(input, settings, deps).execute();
}

/**
 * One invocation of the row fetch: where it starts (a cursor, a stored plan, or a new run), the
 * streams that read and deliver pages, and the cursor it hands back. State that the closures of
 * one function used to share lives in fields; each step is a method.
 */
class FetchRun<P> {
  private readonly source: RowSource<P>;
  private readonly order: PositionOrder<P>;
  private readonly logger: FetchLogger | undefined;
  private readonly maxRecordBytes: number;
  private readonly maxShare: number;
  private readonly budgetCheckEveryRows: number;
  private readonly progressStore: RangeProgressStore<P>;
  // Record buffers are reused once their batch is accepted (record-packer.ts says why).
  private readonly recordBuffers: RecordBufferPool;
  /** The invocation's budget and retry count, begun once the checkpoint is read. */
  private invocation!: PhaseInvocation;
  private stored: { checkpoint: Checkpoint<P>; etag: string } | undefined;
  private cursor!: FetchCursor<P>;
  private position: P | null = null;
  private etag: string | null = null;
  /** A parallel backfill's ranges (cursor positions) and its progress object; undefined: one stream. */
  private ranges: RangeState<P>[] | undefined;
  private progress: RangeProgress<P> | undefined;
  private progressEtag: string | undefined;
  private stats!: FetchStats;
  private quarantineSequence = 0;
  // Quarantine files are numbered in sequence: writes are chained so two never take one number.
  private quarantineChain: Promise<void> = Promise.resolve();
  private declared: Set<string> | undefined;
  private undeclared = new Set<string>();

  constructor(
    private readonly input: FetchInput,
    private readonly settings: FetchSettings,
    private readonly deps: FetchDeps<P>,
  ) {
    this.source = deps.source;
    this.order = deps.source.positions;
    this.logger = deps.logger;
    this.maxRecordBytes = settings.maxRecordBytes ?? MAX_RECORD_BYTES;
    this.maxShare = settings.maxQuarantineShare ?? DEFAULT_MAX_QUARANTINE_SHARE;
    this.budgetCheckEveryRows = Math.max(1, settings.budgetCheckEveryRows ?? DEFAULT_BUDGET_CHECK_ROWS);
    this.progressStore = new RangeProgressStore(deps.stateStore, settings.datasetName, this.order);
    this.recordBuffers = new RecordBufferPool(this.maxRecordBytes);
  }

  private readonly budgetMs = (): number => this.invocation.budgetMs();
  private readonly budgetLeft = (): boolean => this.invocation.budgetLeft();
  private readonly furthest = (a: P | null, b: P | null): P | null => maxPosition(this.order, [a, b]);

  async execute(): Promise<FetchOutput<P>> {
    await this.readCheckpoint();
    // Retries of the plan's count and probes are this invocation's too.
    this.invocation = new PhaseInvocation(this.deps, this.settings.timeBudgetMarginMs);
    if (this.input.cursor) {
      const earlier = await this.resume(this.input.cursor);
      if (earlier) return earlier;
    } else {
      await this.begin(this.input.mode ?? 'incremental');
    }
    const stats: FetchStats = { ...emptyStats(), ...this.cursor.stats };
    stats.invocations++;
    stats.streams = Math.max(stats.streams, this.ranges?.length ?? 1);
    this.stats = stats;
    this.quarantineSequence = this.cursor.quarantineSequence;
    this.declared = this.settings.declaredColumns ? new Set(this.settings.declaredColumns) : undefined;
    this.undeclared = new Set(stats.undeclaredColumns);
    const pagesBefore = stats.pages;
    const rowsBefore = stats.rowsFetched;
    const end = this.ranges ? await this.runRanges(this.ranges) : await this.runSingle();
    return this.finish(end, pagesBefore, rowsBefore);
  }

  /** The stored checkpoint, refused when another source or another position format wrote it. */
  private async readCheckpoint(): Promise<void> {
    const { deps, settings, source, order } = this;
    const read = await deps.checkpoints.read();
    if (read?.checkpoint.source && !sameSource(read.checkpoint.source, source.identity)) {
      throw new CheckpointSourceMismatchError(
        `Checkpoint ${deps.checkpoints.location} of dataset ${settings.datasetName} was written reading ${showSource(read.checkpoint.source)}, ` +
          `but the dataset now reads ${showSource(source.identity)}; its position means nothing there. If the new source is right, ` +
          'start it in a new data directory (locally: --fresh or another --data-dir) or delete the checkpoint (and the old raw data) ' +
          'before a full refresh; if not, fix the source in the dataset file.',
      );
    }
    if (read && (read.checkpoint.format !== order.format || !order.is(read.checkpoint.position))) {
      throw new CheckpointSourceMismatchError(
        `Checkpoint ${deps.checkpoints.location} of dataset ${settings.datasetName} holds a position of format ${read.checkpoint.format} ` +
          `(${JSON.stringify(read.checkpoint.position).slice(0, 200)}), but this source reads positions of format ${order.format}. ` +
          'Delete the checkpoint (and the old raw data) before a full refresh, or fix the source in the dataset file.',
      );
    }
    this.stored = read as { checkpoint: Checkpoint<P>; etag: string } | undefined;
  }

  private conflict(who: string): CheckpointConflictError {
    return new CheckpointConflictError(
      `Checkpoint ${this.deps.checkpoints.location} for dataset ${this.settings.datasetName} was changed by another run ` +
        `(${who}) while run ${this.input.runId} was fetching; this run stops ` +
        'without overwriting it. Make sure only one fetch per dataset runs at a time, then re-run.',
    );
  }

  /** Takes over the cursor of the invocation before; an output when an earlier attempt already finished the run. */
  private async resume(raw: FetchCursor | FetchCursor<P>): Promise<FetchOutput<P> | undefined> {
    const { stored, input, order, logger } = this;
    const cursor = validateCursor(raw, order);
    this.cursor = cursor;
    this.position = cursor.position;
    this.etag = cursor.checkpointEtag;
    if (cursor.ranges) return this.resumeRanges(cursor, cursor.ranges);
    if ((stored?.etag ?? null) !== this.etag) {
      // A retried invocation (Step Functions retries with the same input) gets the cursor of the
      // attempt before the one that failed; that attempt may have moved the checkpoint. Its
      // position is ours if this run wrote it and it is not behind the cursor: continue from there.
      const position = this.position;
      const mine = stored && stored.checkpoint.runId === input.runId && (position === null || order.compare(stored.checkpoint.position, position) >= 0);
      if (!mine) throw this.conflict(stored ? `run ${stored.checkpoint.runId}` : 'it was deleted');
      logger?.info('resuming from the checkpoint an earlier attempt of this run wrote', { cursorPosition: position, checkpoint: stored.checkpoint });
      this.position = stored.checkpoint.position;
      this.etag = stored.etag;
    }
    return undefined;
  }

  /** A parallel backfill's cursor: each range goes on from the further of its cursor and its saved page. */
  private async resumeRanges(cursor: FetchCursor<P>, ranges: RangeState<P>[]): Promise<FetchOutput<P> | undefined> {
    const { stored, input, logger } = this;
    // A parallel backfill writes the checkpoint once, at its end. A retried invocation whose
    // earlier attempt got that far (checkpoint written, then failed) has nothing left to do.
    const saved = await this.progressStore.read();
    if ((stored?.etag ?? null) !== this.etag) {
      if (stored?.checkpoint.runId === input.runId && saved?.progress.runId === input.runId && saved.progress.done) {
        logger?.info('an earlier attempt of this run completed the parallel backfill', { checkpoint: stored.checkpoint });
        const stats = { ...emptyStats(), ...cursor.stats };
        return { runId: input.runId, done: true, cursor: null, stats: { ...stats, checkpoint: stored.checkpoint.position } };
      }
      throw this.conflict(stored ? `run ${stored.checkpoint.runId}` : 'it was deleted');
    }
    if (!saved || saved.progress.runId !== input.runId) throw this.conflict(saved ? `range progress taken by run ${saved.progress.runId}` : 'its range progress was deleted');
    // The cursor of a retried invocation is the one before the attempt that failed.
    this.ranges = ranges.map((r, i) => {
      const s = saved.progress.ranges[i];
      return { ...r, position: this.furthest(r.position, s?.position ?? null), done: r.done || !!s?.done };
    });
    this.progress = saved.progress;
    this.progressEtag = saved.etag;
    return undefined;
  }

  /** A run's first invocation: its start position, and a parallel plan when the source and the rows to read call for one. */
  private async begin(mode: FetchMode): Promise<void> {
    const { stored, settings, source, deps } = this;
    this.position = mode === 'full-refresh' ? null : source.startAfter(stored?.checkpoint.position, settings.lookbackMinutes);
    this.etag = stored?.etag ?? null;
    this.cursor = { version: 1, mode, position: this.position, checkpointEtag: this.etag, quarantineSequence: 0, startedAt: deps.clock().toISOString(), stats: emptyStats() };
    if ((settings.streams ?? 1) > 1 && source.planRanges) await this.planOrTakeOver(mode);
    this.logger?.info('fetch started', { mode, from: this.position, checkpoint: stored?.checkpoint ?? null, streams: this.ranges?.length ?? 1 });
  }

  /** Goes on with the backfill an earlier run left unfinished when it still applies, else plans one (or none: few rows). */
  private async planOrTakeOver(mode: FetchMode): Promise<void> {
    const { settings, source, input, logger } = this;
    const saved = await this.progressStore.read();
    const now = this.deps.clock().toISOString();
    const earlier = saved?.progress;
    // A backfill an earlier run left unfinished goes on where each range stopped, as long as the
    // checkpoint did not move since it was planned (it moves only when a backfill completes) and
    // it covers what this run must read (a full refresh resumes only a full refresh's plan).
    if (
      earlier &&
      !earlier.done &&
      earlier.checkpointEtag === this.etag &&
      (!earlier.source || sameSource(earlier.source, source.identity)) &&
      (mode === 'incremental' || earlier.mode === 'full-refresh')
    ) {
      this.ranges = earlier.ranges.map((r) => ({ ...r }));
      this.progress = { ...earlier, runId: input.runId, writtenAt: now };
      this.progressEtag = await this.progressStore.write(this.progress, saved.etag);
      this.cursor.mode = earlier.mode;
      this.position = earlier.ranges[0]?.after ?? null;
      logger?.info('resuming the parallel backfill an earlier run left unfinished', { plannedBy: earlier.plannedBy, ranges: this.ranges.length, rangesDone: this.ranges.filter((r) => r.done).length });
      return;
    }
    const plan = await source.planRanges!(this.position, Math.min(settings.streams ?? 1, MAX_STREAMS), settings.parallelMinRows ?? DEFAULT_PARALLEL_MIN_ROWS, this.budgetMs);
    if (plan) {
      this.ranges = plan.ranges.map((r) => ({ ...r, position: null, done: false }));
      this.progress = {
        version: 1,
        dataset: settings.datasetName,
        runId: input.runId,
        plannedBy: input.runId,
        mode,
        source: source.identity,
        checkpointEtag: this.etag,
        rows: plan.rows,
        plannedAt: now,
        writtenAt: now,
        ranges: this.ranges.map((r) => ({ ...r })),
        done: false,
      };
      this.progressEtag = await this.progressStore.write(this.progress, saved?.etag);
    }
    logger?.info(plan ? 'parallel backfill planned' : 'one stream: few rows to read', { rows: plan?.rows, streams: plan?.ranges.length ?? 1 });
  }

  private quarantine(rows: QuarantinedRow[], now: Date): Promise<void> {
    const write = this.quarantineChain.then(async () => {
      const { key, sequence } = await writeQuarantine(this.deps.stateStore, this.settings.datasetName, this.input.runId, this.quarantineSequence + 1, now, rows);
      this.quarantineSequence = sequence;
      this.logger?.warn('rows quarantined', { count: rows.length, key });
    });
    this.quarantineChain = write.catch(() => undefined);
    return write;
  }

  private newPage(at: Date, stream: StreamSpec<P>): Page<P> {
    return {
      stream,
      rows: 0,
      delivered: 0,
      missingKey: 0,
      invalidKey: 0,
      malformed: 0,
      large: 0,
      position: null,
      at,
      serializer: new RawRowSerializer({ pointColumns: this.settings.pointColumns, runId: this.input.runId, ingestedAt: at.toISOString() }),
      packer: new RecordPacker(this.maxRecordBytes, this.recordBuffers),
      batch: [],
      batchBytes: 0,
      quarantined: [],
      deliveries: [],
      quarantines: [],
      largeWrites: [],
    };
  }

  // Batches under way, across a stream's pages. Bounded: a row that would need another batch
  // waits (and with it the socket), so memory is a few batches a stream, never a page.
  private async sendBatch(page: Page<P>): Promise<void> {
    if (!page.batch.length) return;
    const { inFlight, delivery } = page.stream;
    const maxInFlight = page.stream.delivery.batchesInFlight ?? MAX_BATCHES_IN_FLIGHT;
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const records = page.batch;
    const sent = delivery.deliver(records, { budgetMs: this.budgetMs });
    page.batch = [];
    page.batchBytes = 0;
    page.deliveries.push(sent);
    const settled = sent.then(
      // Accepted (or refused rows handed back as text): nothing reads these buffers again. A
      // failed delivery's are left to the GC, since a retry of it might still be under way.
      () => this.recordBuffers.release(records),
      () => undefined, // surfaced when the page completes
    );
    inFlight.add(settled);
    void settled.then(() => inFlight.delete(settled));
  }

  private async addRecord(page: Page<P>, record: Buffer): Promise<void> {
    if (page.batch.length >= MAX_BATCH_RECORDS || (page.batch.length && page.batchBytes + record.length > MAX_BATCH_BYTES)) await this.sendBatch(page);
    page.batch.push(record);
    page.batchBytes += record.length;
  }

  private flushQuarantine(page: Page<P>): void {
    if (!page.quarantined.length) return;
    const write = this.quarantine(page.quarantined, page.at);
    write.catch(() => undefined); // surfaced when the page completes
    page.quarantines.push(write);
    page.quarantined = [];
  }

  /** The page's stream ended (or was cut): its last record and quarantined rows go out. */
  private async finishPage(page: Page<P>): Promise<void> {
    const last = page.packer.flush();
    if (last) await this.addRecord(page, last);
    await this.sendBatch(page);
    this.flushQuarantine(page);
  }

  /** Takes one row; a promise only when a closed record has to wait for a batch slot. */
  private takeRow(page: Page<P>, row: SourceRow, at: P): Promise<void> | undefined {
    page.rows++;
    page.position = at;
    // Schema drift from the rows already parsed: a key lookup per field, no extra parsing.
    const { declared, undeclared } = this;
    if (declared) for (const k in row) if (!declared.has(k) && k.charCodeAt(0) !== 58 /* ':' */) undeclared.add(k);
    let waiting: Promise<void> | undefined;
    const problem = keyProblem(row, this.settings.primaryKey);
    if (problem) {
      if (problem.reason === 'missing_primary_key') page.missingKey++;
      else page.invalidKey++;
      page.quarantined.push(problem);
    } else {
      const line = page.serializer.line(row);
      const length = Buffer.byteLength(line, 'utf8');
      if (length > this.maxRecordBytes) {
        // Valid data, only too big for Firehose: written whole to the raw zone by itself.
        page.large++;
        page.delivered++;
        const write = writeLargeRow(this.deps.stateStore, this.settings.datasetName, this.input.runId, row, line, page.at);
        write.catch(() => undefined); // surfaced when the page completes
        page.largeWrites.push(write);
      } else {
        page.delivered++;
        const record = page.packer.add(line, length);
        if (record) waiting = this.addRecord(page, record);
      }
    }
    // Quarantined rows are written in slices, so a page of them is not held whole either.
    if (page.quarantined.length >= QUARANTINE_SLICE_ROWS) this.flushQuarantine(page);
    return waiting;
  }

  /** Takes a source record that is not a row: quarantined in its place in the order. */
  private takeProblem(page: Page<P>, problem: SourceProblem, at: P): void {
    page.rows++;
    page.position = at;
    page.malformed++;
    page.quarantined.push({ reason: 'malformed_record', detail: problem.detail, row: { _raw: problem.raw } });
    if (page.quarantined.length >= QUARANTINE_SLICE_ROWS) this.flushQuarantine(page);
  }

  private countCalls(d: DeliveryStats, direct: boolean): void {
    const { stats } = this;
    if (direct) stats.directObjects += d.calls;
    else stats.firehoseCalls += d.calls;
    stats.firehoseRetriedRecords += d.retriedRecords;
    stats.firehoseThrottledCalls += d.throttledCalls;
  }

  /** The page's deliveries, counted; rows Firehose refused are quarantined. Throws the first failed delivery. */
  private async settleDeliveries(page: Page<P>): Promise<number> {
    const { stats } = this;
    const direct = page.stream.delivery.kind === 'direct';
    const rejected: RejectedRow[] = [];
    let failure: unknown;
    for (const result of await Promise.allSettled(page.deliveries)) {
      if (result.status === 'fulfilled') {
        this.countCalls(result.value, direct);
        if (!direct) stats.firehoseRecords += result.value.records;
        stats.bytesDelivered += result.value.bytes;
        rejected.push(...result.value.rejected);
      } else {
        // Calls and throttling of a failed or deferred delivery are still reported.
        const partial = partialDeliveryStats(result.reason);
        if (partial) this.countCalls(partial, direct);
        failure ??= result.reason;
      }
    }
    if (failure) throw failure;
    if (rejected.length) {
      await this.quarantine(
        rejected.map((r) => ({ reason: 'firehose_rejected', detail: `${r.errorCode}: ${r.errorMessage}`, row: parseLine(r.line) })),
        page.at,
      );
      stats.rowsQuarantined += rejected.length;
      stats.quarantinedRejected += rejected.length;
    }
    return rejected.length;
  }

  /**
   * Every row of the page is delivered or quarantined: count it, run the share guard, and move
   * the stream's durable position (checkpoint or range progress) to its last row, or for a page
   * cut short only the cursor: the rest of that page was never read.
   */
  private async completePage(page: Page<P>, whole: boolean): Promise<void> {
    const { stats, settings, logger } = this;
    await Promise.all(page.quarantines);
    await Promise.all(page.largeWrites);
    const rejected = await this.settleDeliveries(page);
    stats.rowsQuarantined += page.missingKey + page.invalidKey + page.malformed;
    stats.quarantinedMissingKey += page.missingKey;
    stats.quarantinedInvalidKey += page.invalidKey;
    stats.quarantinedMalformed += page.malformed;
    stats.largeRowObjects += page.large;
    const quarantined = page.missingKey + page.invalidKey + page.malformed + rejected;
    stats.rowsDelivered += page.delivered - rejected;
    stats.rowsFetched += page.rows;
    // The guard runs before the checkpoint moves: a wrong or broken source fails the run with
    // its rows in quarantine and the checkpoint still before them.
    if (quarantined && (quarantined === page.rows || stats.rowsQuarantined > this.maxShare * stats.rowsFetched)) {
      throw new QuarantineShareError(
        `Dataset ${settings.datasetName}: ${quarantined === page.rows ? `every row of a page (${page.rows}) was quarantined` : `${stats.rowsQuarantined} of ${stats.rowsFetched} fetched rows were quarantined`}, ` +
          `above fetch.maxQuarantineShare ${this.maxShare} (missing primary key ${stats.quarantinedMissingKey}, primary key not a scalar ${stats.quarantinedInvalidKey}, ` +
          `refused by Firehose ${stats.quarantinedRejected}, malformed records ${stats.quarantinedMalformed}). The source is probably the wrong one or broken: check the source ` +
          `(${showSource(this.source.identity)}) and primaryKey, and the rows under ${this.deps.stateStore.location}/quarantine/${settings.datasetName}/; the checkpoint was not moved past them.`,
      );
    }
    const last = page.position!;
    if (!whole) {
      page.stream.cut(last);
      logger?.info('page cut short; rows so far delivered, cursor moved (the checkpoint stays on the last whole page)', { rows: page.rows, position: last });
      return;
    }
    stats.pages++;
    await page.stream.commit(last, page.at);
    faultPoint('fetch:after-checkpoint-write');
    logger?.info('page delivered', { page: stats.pages, rows: page.rows, rowsFetched: stats.rowsFetched, position: last });
  }

  /** Reads one page of the stream into `page`; rows and problem records are taken as they arrive. */
  private readPage(spec: StreamSpec<P>, page: Page<P>, after: P | null) {
    const keep = (): boolean => !spec.stopped() && (page.rows % this.budgetCheckEveryRows !== 0 || this.budgetLeft());
    return this.source.streamPage({
      limit: this.settings.pageSize,
      after,
      ...(spec.until !== null ? { until: spec.until } : {}),
      budgetMs: this.budgetMs,
      onRow: (row, at) => {
        const waiting = this.takeRow(page, row, at);
        return waiting ? waiting.then(keep) : keep();
      },
      onProblem: (problem, at) => {
        this.takeProblem(page, problem, at);
        return keep();
      },
    });
  }

  /**
   * Reads one stream page after page until its data ends, its time budget is spent or it is told
   * to stop. Pages complete strictly in order, so the durable position only ever moves past
   * delivered rows, and a failed page stops it before itself even when a later page was already
   * delivered.
   */
  private async runStream(spec: StreamSpec<P>): Promise<StreamEnd> {
    let done = false;
    // Where the next page is read from: the last row received, ahead of the durable position
    // while a page's deliveries are still under way.
    let readFrom = spec.from;
    let previous: Promise<void> | undefined;
    let current: Page<P> | undefined;
    try {
      // An invocation always starts its first page (it was invoked with at least the margin); a
      // further page starts only with the margin left, and the budget also cuts a page at a row.
      for (let first = true; (first || this.budgetLeft()) && !spec.stopped(); first = false) {
        const page = this.newPage(this.deps.clock(), spec);
        current = page;
        const result = await this.readPage(spec, page, readFrom);
        await this.finishPage(page);
        // The end of the data is an empty page, not a short one: a portal may cap $limit below
        // what was asked, so a short page is followed by one more request.
        if (!page.rows) {
          current = undefined;
          done = true;
          break;
        }
        readFrom = page.position;
        // The previous page completes (its deliveries overlapped this page's download) before this one.
        if (previous) await previous;
        current = undefined;
        const completion = this.completePage(page, !result.stopped);
        completion.catch(() => undefined); // surfaced when awaited in order
        previous = completion;
        if (result.stopped) break; // time budget spent, or told to stop, mid-page
        // The range's own last row: its end, without the request for an empty page to say so.
        if (spec.until !== null && this.order.compare(page.position!, spec.until) === 0) {
          done = true;
          break;
        }
      }
      if (previous) await previous;
      return { done };
    } catch (err) {
      return this.streamFailed(err, previous, current);
    }
  }

  /**
   * A stream's page failed. Out of time for a retry wait: keep what is complete and hand the rest
   * to the next invocation. Any other failure: the page before it (its delivery under way when the
   * next page's stream failed, say) is still completed if it can be, so the next run does not redo it.
   */
  private async streamFailed(err: unknown, previous: Promise<void> | undefined, current: Page<P> | undefined): Promise<StreamEnd> {
    if (!(err instanceof TimeBudgetExhaustedError)) {
      if (previous) await previous.catch(() => undefined);
      throw err;
    }
    let previousComplete = true;
    if (previous) {
      await previous.catch((e: unknown) => {
        if (!(e instanceof TimeBudgetExhaustedError)) throw e;
        previousComplete = false;
      });
    }
    // The page cut by the deferral: the rows it received are delivered, and the cursor (not the
    // checkpoint) moves past them, so the next invocation does not request them again.
    if (previousComplete && current?.rows) {
      await this.finishPage(current);
      await this.completePage(current, false).catch((e: unknown) => {
        if (!(e instanceof TimeBudgetExhaustedError)) throw e;
      });
    }
    return { done: false, deferred: err };
  }

  /** The checkpoint that says every row up to `last` is delivered. */
  private checkpointAt(last: P, at: Date): Checkpoint<P> {
    return { dataset: this.settings.datasetName, runId: this.input.runId, writtenAt: at.toISOString(), source: this.source.identity, format: this.order.format, position: last };
  }

  /** One stream from the start position; every whole page moves the checkpoint. */
  private runSingle(): Promise<StreamEnd> {
    return this.runStream({
      from: this.position,
      until: null,
      delivery: this.deps.delivery,
      inFlight: new Set(),
      commit: async (last, at) => {
        this.etag = await this.deps.checkpoints.write(this.checkpointAt(last, at), this.etag ?? undefined);
        this.position = last;
      },
      cut: (last) => {
        this.position = last;
      },
      stopped: () => false,
    });
  }

  /**
   * The parallel backfill: each unfinished range read by its own stream, at most
   * maxConcurrentStreams at once. A stream's whole pages are saved in the range progress; the
   * first stream to fail stops the others at their next row, and the invocation fails after
   * what they delivered is saved, so its retry (or the next run) goes on from there.
   */
  private async runRanges(all: RangeState<P>[]): Promise<StreamEnd> {
    const delivery = this.deps.parallelDelivery ?? this.deps.delivery;
    // Whole pages saved so far, per range: what the progress object records.
    const saved = all.map((r) => r.position);
    let chain: Promise<void> = Promise.resolve();
    const save = (): Promise<void> => {
      const write = chain.then(async () => {
        this.progress = {
          ...this.progress!,
          runId: this.input.runId,
          writtenAt: this.deps.clock().toISOString(),
          ranges: all.map((r, i) => ({ after: r.after, until: r.until, position: saved[i] ?? null, done: r.done })),
        };
        this.progressEtag = await this.progressStore.write(this.progress, this.progressEtag);
      });
      chain = write.catch(() => undefined);
      return write;
    };
    let failure: { error: unknown } | undefined;
    let deferredBy: TimeBudgetExhaustedError | undefined;
    const todo = all.map((_, i) => i).filter((i) => !all[i]!.done);
    const runOne = async (i: number): Promise<void> => {
      const range = all[i]!;
      const result = await this.runStream({
        from: range.position ?? range.after,
        until: range.until,
        delivery,
        inFlight: new Set(),
        commit: async (last) => {
          range.position = last;
          saved[i] = last;
          await save();
        },
        cut: (last) => {
          range.position = last;
        },
        stopped: () => failure !== undefined,
      });
      if (result.deferred) deferredBy ??= result.deferred;
      if (result.done) {
        range.done = true;
        await save();
      }
    };
    const width = Math.max(1, Math.min(this.settings.maxConcurrentStreams ?? todo.length, todo.length));
    await Promise.all(
      Array.from({ length: width }, async () => {
        // Like a single stream's first page, each worker's first range starts whatever the budget says.
        for (let i = todo.shift(), first = true; i !== undefined && !failure && !deferredBy && (first || this.budgetLeft()); i = todo.shift(), first = false) {
          try {
            await runOne(i);
          } catch (error) {
            failure ??= { error };
          }
        }
      }),
    );
    if (failure) throw failure.error;
    if (!all.every((r) => r.done)) return { done: false, ...(deferredBy ? { deferred: deferredBy } : {}) };
    // Every range complete: the checkpoint moves to the furthest row read, then the plan is closed.
    const last = maxPosition(this.order, all.map((r) => r.position));
    if (last !== null) {
      this.etag = await this.deps.checkpoints.write(this.checkpointAt(last, this.deps.clock()), this.etag ?? undefined);
      this.position = last;
    }
    this.progress = { ...this.progress!, done: true };
    await save();
    this.logger?.info('parallel backfill complete', { ranges: all.length, checkpoint: this.position });
    return { done: true };
  }

  /** The invocation's figures and the cursor for the next one; fails a run that stalls invocation after invocation. */
  private finish(end: StreamEnd, pagesBefore: number, rowsBefore: number): FetchOutput<P> {
    const { stats, settings, logger, input } = this;
    const { done, deferred } = end;
    stats.sourceRetries += this.invocation.retries();
    stats.undeclaredColumns = [...this.undeclared].sort().slice(0, MAX_UNDECLARED_SHOWN);
    const stalledInvocations = this.invocation.stalls(
      stats,
      deferred,
      stats.pages !== pagesBefore || stats.rowsFetched !== rowsBefore,
      this.cursor.stalledInvocations,
      (stalled, last) =>
        new Error(
          `Dataset ${settings.datasetName}: ${stalled} invocations in a row ran out of time budget without completing a page ` +
            `(last: ${last.message}). The source or Firehose keeps asking to wait longer than an invocation can; ` +
            'the checkpoint holds every delivered row, re-run later.',
          { cause: last },
        ),
    );
    if (deferred) logger?.warn('time budget cannot cover the next retry wait; returning the cursor', { reason: deferred.message, stalledInvocations });
    const nextCursor: FetchCursor<P> = {
      ...this.cursor,
      position: this.position,
      checkpointEtag: this.etag,
      quarantineSequence: this.quarantineSequence,
      stats,
      stalledInvocations,
      ...(this.ranges ? { ranges: this.ranges, rangesEtag: this.progressEtag ?? null } : {}),
    };
    logger?.info(done ? 'fetch finished' : 'time budget reached; returning cursor', { stats, position: this.position });
    return { runId: input.runId, done, cursor: done ? null : nextCursor, stats: { ...stats, checkpoint: this.position } };
  }
}

/** A refused raw line back as an object for the quarantine file (kept as text if it does not parse). */
export function parseLine(line: string): SourceRow {
  try {
    return JSON.parse(line) as SourceRow;
  } catch {
    return { _unparsed_line: line };
  }
}
