/**
 * The send rate one FirehoseDelivery keeps to a stream once the stream has throttled it, shared
 * by every call in flight (concurrent batches, concurrent deliver() calls). A Direct PUT stream's
 * quota is per stream per second (1 MiB/s in most regions), and retrying throttled entries on a
 * per-batch backoff both wastes calls and leaves the quota idle between backoffs; pacing sends at
 * about the rate the stream accepts, learnt from its answers:
 * - until the first throttling nothing is paced (a stream far above our rate costs nothing);
 * - throttled: the rate drops to `decrease` × what was accepted over the last second (on the
 *   first throttling; 1 MiB/s, the smallest default quota, when nothing was) or × the current rate,
 *   at most once a second (the quota's window), and not for answers to calls sent before the last
 *   drop: they say nothing about the new rate;
 * - each call answered without throttling raises the rate by `increase` × its bytes, so the rate
 *   grows by `increase` per second of full pacing and probes back up to the quota;
 * - a paced call carries at most `CALL_SECONDS` of the rate (at least one record), since a call
 *   larger than the stream's one-second bucket could never be accepted whole.
 */

export interface PacerOptions {
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  /** Fraction of the rate kept after a throttled round. */
  decrease?: number;
  /** Rate gained per accepted byte while paced: the growth per second of full pacing. */
  increase?: number;
  /** The rate never drops below this (bytes/s): the quota of a stream other producers share may be spent for a while. */
  minBytesPerSecond?: number;
}

/** The smallest default Direct PUT quota (most regions), assumed when a throttled stream accepted nothing yet. */
const SMALLEST_DEFAULT_QUOTA = 1024 * 1024;
/** A paced call holds at most this many seconds of the rate. */
const CALL_SECONDS = 0.5;
const WINDOW_MS = 1_000;

export class DeliveryPacer {
  private rate: number | undefined;
  private freeAt = 0;
  private lastDecreaseAt = -Infinity;
  private readonly window: { at: number; bytes: number }[] = [];
  private readonly now: () => number;
  private readonly decrease: number;
  private readonly increase: number;
  private readonly minRate: number;

  constructor(options: PacerOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.decrease = options.decrease ?? 0.7;
    this.increase = options.increase ?? 0.1;
    this.minRate = options.minBytesPerSecond ?? 64 * 1024;
  }

  /** The paced rate in bytes/s; undefined while the stream has not throttled. */
  get bytesPerSecond(): number | undefined {
    return this.rate;
  }

  /** Bytes the next call may carry (at least one record whatever this says); Infinity while unpaced. */
  callBytes(): number {
    return this.rate === undefined ? Infinity : this.rate * CALL_SECONDS;
  }

  /** Books a call of `bytes` and returns how long to wait before sending it (0 while unpaced). */
  reserve(bytes: number): number {
    if (this.rate === undefined) return 0;
    const now = this.now();
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes / this.rate) * 1000;
    return start - now;
  }

  /** When a call starts: its answer is judged against the drops made before it. */
  sent(): number {
    return this.now();
  }

  /** A call sent at `sentAt` was answered: `acceptedBytes` accepted, and whether anything was throttled. */
  answered(sentAt: number, acceptedBytes: number, throttled: boolean): void {
    const now = this.now();
    if (acceptedBytes > 0) this.window.push({ at: now, bytes: acceptedBytes });
    while (this.window.length && this.window[0]!.at < now - WINDOW_MS) this.window.shift();
    if (!throttled) {
      if (this.rate !== undefined) this.rate += acceptedBytes * this.increase;
      return;
    }
    // One drop per quota window (the stream's buckets hold one second), and none for calls sent
    // before the last drop: their answers say nothing about the new rate.
    if (sentAt < this.lastDecreaseAt || now - this.lastDecreaseAt < WINDOW_MS) return;
    const accepted = this.window.reduce((sum, w) => sum + w.bytes, 0);
    const base = this.rate ?? (accepted > 0 ? accepted : SMALLEST_DEFAULT_QUOTA);
    this.rate = Math.max(this.minRate, base * this.decrease);
    this.lastDecreaseAt = now;
    // Calls already booked at the old rate keep their slots; the next ones follow the new rate.
  }
}
