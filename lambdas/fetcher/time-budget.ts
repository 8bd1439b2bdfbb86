/**
 * The invocation's time budget, shared by every wait of the fetcher. A retry wait (backoff or
 * Retry-After) that the budget cannot cover is not started: the run returns its cursor
 * (`done: false`) and the state machine invokes it again, instead of the Lambda being killed
 * mid-page at its 15-minute limit.
 */
import { SourceError } from '../../runtime/pipeline-error';

/** Milliseconds the current request and its retries may still use; Infinity without a budget. */
export type BudgetMs = () => number;

export class TimeBudgetExhaustedError extends SourceError {
  override name = 'TimeBudgetExhaustedError';
}

/** The shortest attempt worth waiting for: below this the attempt would only time out. */
export const MIN_ATTEMPT_MS = 5_000;

/**
 * Before a retry wait of `delayMs`: the deadline of the attempt after it (its own timeout, cut to
 * what the budget leaves after the wait), or TimeBudgetExhaustedError when the wait plus a useful
 * attempt (MIN_ATTEMPT_MS, or the whole timeout if shorter) does not fit. Reads the budget once.
 */
export function retryDeadline(budgetMs: BudgetMs | undefined, delayMs: number, timeoutMs: number, what: string): number {
  const left = budgetMs?.() ?? Infinity;
  const minAttempt = Math.min(timeoutMs, MIN_ATTEMPT_MS);
  if (delayMs + minAttempt > left) {
    throw new TimeBudgetExhaustedError(
      `${what}: a wait of ${(delayMs / 1000).toFixed(1)} s and an attempt of at least ${(minAttempt / 1000).toFixed(1)} s ` +
        `do not fit in the ${Math.max(0, left / 1000).toFixed(1)} s left of the invocation's time budget; the run continues in the next invocation`,
    );
  }
  return Math.min(timeoutMs, left - delayMs);
}
