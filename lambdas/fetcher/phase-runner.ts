/**
 * What the row fetch, the key scan and the repair share about one invocation: the time budget a
 * request and its retries may use, the rule that a page starts only while the budget lasts (the
 * first always does, so an invocation makes progress), a retry wait the budget cannot cover ending
 * the invocation with its cursor, and a run that stalls invocation after invocation failing.
 */
import { TimeBudgetExhaustedError, type BudgetMs } from './time-budget';

/** Invocations in a row that may end by the time budget without completing a page. */
export const MAX_STALLED_INVOCATIONS = 3;

export interface FetchLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface InvocationClock {
  /** Milliseconds left before the Lambda's own limit. */
  remainingTimeMs: () => number;
  /** Source retries observed so far (the client counts them); read at the end of each page. */
  sourceRetries?: () => number;
}

/** What every phase is given besides its source and stores. */
export interface PhaseDeps extends InvocationClock {
  clock: () => Date;
  logger?: FetchLogger;
}

export class PhaseInvocation {
  private readonly retriesBefore: number;

  constructor(
    private readonly clock: InvocationClock,
    private readonly marginMs: number,
  ) {
    this.retriesBefore = clock.sourceRetries?.() ?? 0;
  }

  // Retry waits may use the time left minus half the margin: the other half finishes the pages
  // already delivered (their checkpoint or cursor writes) before the Lambda's own limit.
  readonly budgetMs: BudgetMs = () => this.clock.remainingTimeMs() - this.marginMs / 2;
  /** Another page may start. */
  readonly budgetLeft = (): boolean => this.clock.remainingTimeMs() > this.marginMs;

  /** Source retries since this invocation began. */
  retries(): number {
    return (this.clock.sourceRetries?.() ?? 0) - this.retriesBefore;
  }

  /**
   * Read pages until `page` says the phase is done or the budget ends; the first page is always
   * read. A retry wait the budget cannot cover ends the loop: it is returned, never thrown, since
   * what was delivered before it stands and the next invocation goes on from the cursor.
   */
  async pages(page: () => Promise<boolean>): Promise<TimeBudgetExhaustedError | undefined> {
    try {
      for (let first = true; first || this.budgetLeft(); first = false) {
        if (await page()) return undefined;
      }
      return undefined;
    } catch (err) {
      if (err instanceof TimeBudgetExhaustedError) return err;
      throw err;
    }
  }

  /**
   * The invocations in a row, this one included, that ended by the time budget without progress
   * (0 when this one was not deferred or made progress); counts the deferral in `stats`. The
   * MAX_STALLED_INVOCATIONS-th such invocation fails the run with `fail`'s error instead: the
   * source keeps asking to wait longer than an invocation can, and retrying forever hides it.
   */
  stalls(
    stats: { timeBudgetDeferrals: number },
    deferred: TimeBudgetExhaustedError | undefined,
    progressed: boolean,
    stalledBefore: number | undefined,
    fail: (stalled: number, deferred: TimeBudgetExhaustedError) => Error,
  ): number {
    if (!deferred) return 0;
    stats.timeBudgetDeferrals++;
    const stalled = progressed ? 0 : (stalledBefore ?? 0) + 1;
    if (stalled >= MAX_STALLED_INVOCATIONS) throw fail(stalled, deferred);
    return stalled;
  }
}

/**
 * A cursor the state machine hands back, as a phase of this fetcher returned it (`fits` checks the
 * phase's own fields); anything else is `Failure`'s error naming `what` and showing the start of it.
 */
export function checkedCursor<C extends { version: 1; stats: object }>(c: unknown, what: string, fits: (x: Partial<C>) => boolean, Failure: new (message: string) => Error): C {
  const x = c as Partial<C> | null;
  if (!x || x.version !== 1 || typeof x.stats !== 'object' || !fits(x)) {
    throw new Failure(`${what} cursor is not one this fetcher returned: ${JSON.stringify(c).slice(0, 300)}`);
  }
  return x as C;
}

