/** Exponential backoff with full jitter, shared by the Socrata and Firehose paths. */

export interface RetryPolicy {
  maxAttempts: number;
  /** Delay before the second attempt (before jitter); doubles per attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Injected so tests can record the delays instead of waiting them out. */
  sleep: (ms: number) => Promise<void>;
  /** 0 ≤ x < 1; injected for deterministic tests. */
  random: () => number;
}

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function defaultRetryPolicy(maxAttempts: number): RetryPolicy {
  return { maxAttempts, baseDelayMs: 500, maxDelayMs: 30_000, sleep: realSleep, random: Math.random };
}

/** Delay before attempt `attempt + 1` (attempt counts from 1): full jitter over an exponential cap. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // Half fixed, half jittered: spreads concurrent clients without ever retrying immediately.
  return Math.round(cap / 2 + policy.random() * (cap / 2));
}
