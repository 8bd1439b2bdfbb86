/**
 * Invoking the fetcher the way the state machine does: call the handler with a fresh time budget,
 * then again with the cursor it returned, until it says `done`. The local pipeline and the
 * benchmark both drive the real handler through this.
 */
import type { FetchOutput } from '../lambdas/fetcher/fetch-run';
import type { KeyScanOutput } from '../lambdas/fetcher/key-scan';
import type { RepairOutput } from '../lambdas/fetcher/repair';
import type { FetcherContext, FetcherEvent, FetcherOutput, KeyScanEvent, RepairEvent } from '../lambdas/fetcher/handler';
import { FETCHER_PHASE, type FetcherFollowUpPhase, type RunMode } from '../runtime/run-protocol';

export type FetcherHandler = (event: FetcherEvent, context: FetcherContext) => Promise<FetchOutput>;

export interface FetchLoopOptions {
  runId: string;
  mode: RunMode;
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

/** The handler's other phases (key scan, repair), looped on `done` the same way. */
export type PhaseHandler = <E extends KeyScanEvent | RepairEvent>(event: E, context: FetcherContext) => Promise<FetcherOutput<E>>;

export async function invokePhaseUntilDone<P extends FetcherFollowUpPhase>(
  handler: PhaseHandler,
  phase: P,
  opts: { runId: string; budgetMs: number },
): Promise<{ out: P extends 'keys' ? KeyScanOutput : RepairOutput; invocations: number }> {
  let cursor: unknown = null;
  for (let invocations = 1; ; invocations++) {
    const deadline = Date.now() + opts.budgetMs;
    const context = { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: `${opts.runId}-${phase}-${invocations}` };
    const out =
      phase === FETCHER_PHASE.keys
        ? await handler({ runId: opts.runId, phase: FETCHER_PHASE.keys, cursor: cursor as KeyScanOutput['cursor'] }, context)
        : await handler({ runId: opts.runId, phase: FETCHER_PHASE.repair, cursor: cursor as RepairOutput['cursor'] }, context);
    if (out.done) return { out: out as P extends 'keys' ? KeyScanOutput : RepairOutput, invocations };
    cursor = out.cursor;
  }
}
