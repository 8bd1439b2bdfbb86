/** The local Firehose's injected faults: which records fail, and how many calls are throttled. */
import { seededRandom } from './fire-incidents-generator';
import type { FirehoseFaults } from './firehose-types';

export class InjectedFaults {
  private faults: FirehoseFaults = {};
  private random: () => number = Math.random;
  private throttleRemaining = 0;
  /** Records looked at since start (not since the last `set`): `failEveryNthRecord` counts on it. */
  private recordSequence = 0;

  constructor(faults: FirehoseFaults = {}) {
    this.set(faults);
  }

  /** Replaces the configuration; the PRNG restarts from the new seed. */
  set(faults: FirehoseFaults): void {
    this.faults = { ...faults };
    this.random = seededRandom(faults.seed ?? 1);
    this.throttleRemaining = faults.throttleNextCalls ?? 0;
  }

  /** Whether the next record fails. */
  recordFails(): boolean {
    this.recordSequence += 1;
    const n = this.faults.failEveryNthRecord;
    if (n && n > 0 && this.recordSequence % n === 0) return true;
    const p = this.faults.failProbability;
    return p !== undefined && p > 0 && this.random() < p;
  }

  /** Whether this call is throttled (one of `throttleNextCalls` spent). */
  takeThrottle(): boolean {
    if (this.throttleRemaining <= 0) return false;
    this.throttleRemaining -= 1;
    return true;
  }
}
