/**
 * The invocation's time budget, shared by every wait of the fetcher. A retry wait (backoff or
 * Retry-After) that the budget cannot cover is not started: the run returns its cursor
 * (`done: false`) and the state machine invokes it again, instead of the Lambda being killed
 * mid-page at its 15-minute limit.
 */

/** Milliseconds the current request and its retries may still use; Infinity without a budget. */
export type BudgetMs = () => number;

export class TimeBudgetExhaustedError extends Error {
  override name = 'TimeBudgetExhaustedError';
}

/** Throws TimeBudgetExhaustedError unless `needMs` (a wait plus the next attempt) fits in the budget. */
export function assertBudget(budgetMs: BudgetMs | undefined, needMs: number, what: string): void {
  const left = budgetMs?.() ?? Infinity;
  if (needMs > left) {
    throw new TimeBudgetExhaustedError(
      `${what}: the next attempt needs up to ${Math.round(needMs / 1000)} s but only ${Math.max(0, Math.round(left / 1000))} s ` +
        "of the invocation's time budget are left; the run continues in the next invocation",
    );
  }
}
