/**
 * The boundary between the fetcher's phases and a source. The row fetch, the key scan and the
 * repair phase (fetch-run.ts, key-scan.ts, repair.ts) own delivery, checkpoints, quarantine, time
 * budgets and their cursors; a source adapter owns everything about how its rows are addressed:
 * the requests, the order rows come in, what a position is and how two compare, and the checks
 * that a page really is the answer asked for (a source that ignores its own ordering would make
 * the fetcher skip or repeat rows).
 *
 * A position is opaque to the phases: they compare it with the adapter's order, keep it in
 * cursors and checkpoints as JSON, and hand it back. Its `format` is stored beside it in the
 * checkpoint, so a position is never read by an adapter it does not belong to.
 *
 * Adding a source type: a folder under sources/ with its adapter, a member of the dataset schema's
 * `source` union, and a case in registry.ts.
 */
import type { BudgetMs } from '../time-budget';

/** One source row as the adapter hands it over: field name → value (Socrata: every scalar a string). */
export type SourceRow = Record<string, unknown>;

// Identities are shared with the transform, which checks a key scan's against the dataset's.
export { sameSource, showSource, type SourceIdentity } from '../../../runtime/source-identity';
import type { SourceIdentity } from '../../../runtime/source-identity';

/** How an adapter's positions compare, read back from JSON and print. */
export interface PositionOrder<P> {
  /** Stored beside every checkpoint position; changes when the position's meaning changes. */
  readonly format: string;
  /** < 0 when `a` comes first in the order rows are read, 0 when equal, > 0 after. */
  compare(a: P, b: P): number;
  /** A position read back from a cursor, range plan or checkpoint: is it one of ours? */
  is(value: unknown): value is P;
  show(p: P): string;
}

/** A page of rows read as a stream, strictly after `after` in the adapter's order. */
export interface RowPageQuery<P> {
  /** null: from the beginning of the data. */
  after: P | null;
  /** The page ends at this row (inclusive) however many rows `limit` allows: a parallel range's upper edge. */
  until?: P;
  limit: number;
  /** What the invocation's time budget leaves for requests and retry waits. */
  budgetMs?: BudgetMs;
  /**
   * Called once per row, in order, after the adapter checked it belongs in the page; awaited
   * (backpressure). Return false to stop the page after this row.
   */
  onRow: (row: SourceRow, position: P) => boolean | void | Promise<boolean | void>;
  /**
   * A record of the source that is not a row (a ragged CSV line, an invalid JSON line): it takes
   * its place in the order like a row, is quarantined with `detail` and its raw text, and counts
   * against the quarantine share. Sources whose pages are rows or an error (Socrata) never call it.
   */
  onProblem?: (problem: SourceProblem, position: P) => boolean | void | Promise<boolean | void>;
}

/** A source record that cannot be read as a row, with where it is and its text (cut to a bound). */
export interface SourceProblem {
  /** Names the place for a person: "https://.../orders.csv line 17: has 3 fields, the header has 4". */
  detail: string;
  raw: string;
}

export interface StreamPageResult {
  /** Rows handed to onRow. */
  rows: number;
  /** True when onRow stopped the page before its end (not on its `limit`-th row). */
  stopped: boolean;
  /** Requests made after the first because the connection dropped mid-page. */
  resumes: number;
}

/** Rows after a start split into ranges of about equal row counts, (after, until], the last open-ended. */
export interface RangePlan<P> {
  /** Rows after the start when the plan was made (the source may change while it is read). */
  rows: number;
  ranges: { after: P | null; until: P | null }[];
}

/** What the row fetch reads through. */
export interface RowSource<P> {
  readonly identity: SourceIdentity;
  readonly positions: PositionOrder<P>;
  /** Where an incremental run starts, from the checkpoint's position (undefined: none yet). */
  startAfter(checkpoint: P | undefined, lookbackMinutes: number): P | null;
  streamPage(query: RowPageQuery<P>): Promise<StreamPageResult>;
  /**
   * Splits the rows after `start` into `streams` ranges, or undefined when fewer than `minRows`
   * are to be read. Absent: the source is always read as one stream.
   */
  planRanges?(start: P | null, streams: number, minRows: number, budgetMs?: BudgetMs): Promise<RangePlan<P> | undefined>;
}

/** A page of the source's keys for the key scan, in an order of the adapter's choosing. */
export interface KeyPage {
  /** Rows holding at least the primary key field. */
  rows: SourceRow[];
  /** Where the next page starts (opaque to the key scan); meaningful only when rows is not empty. */
  next: string;
}

/** What the key scan reads through: every key the source has, page by page. */
export interface KeySource {
  readonly identity: SourceIdentity;
  /** Up to `limit` keys after `after` (null: the first page); an empty page is the end. */
  readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage>;
}

/** What the repair phase reads through: rows by primary key. */
export interface KeyedRowSource<P> {
  readonly positions: PositionOrder<P>;
  /**
   * The keys split into requests the source accepts (Socrata: URL length); deterministic, so a
   * cursor's batch index means the same batch in every invocation of a run.
   */
  keyBatches(keys: readonly string[]): string[];
  /** Up to `limit` rows of the batch's keys after `after`, with the last row's position. */
  readByKeys(query: { batch: string; after: P | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: P | null }>;
}

/** A source that serves all three phases. */
export type SourceAdapter<P> = RowSource<P> & KeySource & KeyedRowSource<P>;
