/**
 * Invoking the fetcher the way the state machine does: call the handler with a fresh time budget,
 * then again with the cursor it returned, until it says `done`. The local pipeline and the
 * benchmark both drive the real handler through this.
 */
import type { FetchMode, FetchOutput } from '../lambdas/fetcher/fetch-run';
import type { FetcherContext, FetcherEvent } from '../lambdas/fetcher/handler';

export type FetcherHandler = (event: FetcherEvent, context: FetcherContext) => Promise<FetchOutput>;

export interface FetchLoopOptions {
  runId: string;
  mode: FetchMode;
  /** Time budget of one invocation (a Lambda's remaining time). */
  budgetMs: number;
  /** Stop after this many invocations even if not done (tests of an interrupted fetch). */
  maxInvocations?: number;
  onInvocation?: (out: FetchOutput) => void;
}

export async function invokeUntilDone(handler: FetcherHandler, opts: FetchLoopOptions): Promise<{ out: FetchOutput; invocations: number }> {
  let cursor: FetchOutput['cursor'] = null;
  for (let invocations = 1; ; invocations++) {
    const deadline = Date.now() + opts.budgetMs;
    const out = await handler(
      { runId: opts.runId, mode: opts.mode, cursor },
      { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: `${opts.runId}-${invocations}` },
    );
    opts.onInvocation?.(out);
    if (out.done || (opts.maxInvocations !== undefined && invocations >= opts.maxInvocations)) return { out, invocations };
    cursor = out.cursor;
  }
}
