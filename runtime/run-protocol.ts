/**
 * The run protocol: what the state machine (lib/constructs/ingestion-state-machine.ts), the
 * fetcher (lambdas/fetcher/handler.ts), the transform container (containers/transform/src/main.ts)
 * and the local driver (local/pipeline.ts, local/fetch-loop.ts) must agree on. It was written
 * once as literals in the state machine and again in the local driver; a phase or exit code
 * changed in one place and not the other would only show up as a run that stops in the wrong place.
 */

/**
 * The phases of one run, in the order they run. "keys" (the key scan) and "repair" are the
 * fetcher's own phases, invoked like the row fetch; "repair" runs only after the transform exits
 * with `TRANSFORM_EXIT.repairNeeded`, and then is followed by another flush and transform, once.
 */
export const RUN_PHASES = ['fetch', 'keys', 'flush', 'crawl', 'transform', 'repair'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/**
 * The fetcher's event `phase` for each run phase it serves. The row fetch is "rows" (and the
 * default when `phase` is absent), so an event from before the phases existed still fetches rows.
 */
export const FETCHER_PHASE = { fetch: 'rows', keys: 'keys', repair: 'repair' } as const satisfies Partial<Record<RunPhase, string>>;
export type FetcherPhase = (typeof FETCHER_PHASE)[keyof typeof FETCHER_PHASE];
/** The fetcher phases looped after the row fetch; each starts from a null cursor of its own. */
export type FetcherFollowUpPhase = Exclude<FetcherPhase, 'rows'>;

/** The run modes the fetcher accepts; any other `mode` fails the run before it fetches. */
export const RUN_MODES = ['incremental', 'full-refresh'] as const;
export type RunMode = (typeof RUN_MODES)[number];

/**
 * What each fetcher invocation is given. One invocation does as much as its time budget allows;
 * the caller starts with a null cursor and passes back the cursor of the previous answer.
 */
export interface FetcherRequest<Phase extends FetcherPhase, Cursor> {
  /** The run (the execution name): names the run's objects and is recorded with every row. */
  readonly runId: string;
  readonly phase?: Phase;
  /** The row fetch only. */
  readonly mode?: RunMode;
  readonly cursor?: Cursor | null;
}

/**
 * What each fetcher invocation answers, whatever the phase. The state machine keeps these fields
 * only (a state is limited to 256 KB; the answer is a few hundred bytes) and invokes the phase
 * again while `done` is false, passing `cursor` back; `stats` are cumulative over the phase.
 */
export interface FetcherAnswer<Cursor, Stats> {
  readonly done: boolean;
  readonly cursor: Cursor | null;
  readonly stats: Stats;
}
export const FETCHER_ANSWER_FIELDS = ['done', 'cursor', 'stats'] as const satisfies readonly (keyof FetcherAnswer<unknown, unknown>)[];

/**
 * The transform container's exit codes. The state machine branches on them (it reads the task's
 * exit code, not its log), and the local CLI exits with the same ones, so a script that runs
 * either can tell a refused mass delete from a crash.
 */
export const TRANSFORM_EXIT = {
  /** Success (warn-severity data tests may have failed; they are in the summary and report). */
  ok: 0,
  /** The run failed (a query, an object read/write, the engine); the log line says what to do. */
  failed: 1,
  /** Configuration error (environment variables, dataset definition, model files), or a usage error. */
  config: 2,
  /** An error-severity data test failed; the log names each failing test. */
  testsFailed: 3,
  /**
   * Mass delete refused: the key scan would delete more than deletions.maxDeleteShare of curated;
   * nothing was deleted. The state machine fails the run as MassDeleteRefused (and the task log's
   * line feeds the MassDeleteRefused metric and alarm).
   */
  massDeleteRefused: 4,
  /**
   * Repair needed: curated lacks source keys (listed in keysets/<dataset>/<run>/missing-keys.jsonl.gz)
   * and nothing else failed. The state machine runs the
   * fetcher's "repair" phase, waits for the flush and runs the transform again, once; a second 5
   * fails the run (RepairDidNotReconcile).
   */
  repairNeeded: 5,
} as const;
export type TransformExitCode = (typeof TRANSFORM_EXIT)[keyof typeof TRANSFORM_EXIT];
