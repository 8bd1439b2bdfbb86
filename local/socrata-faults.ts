/** Which injected fault, if any, a numbered resource request of the local Socrata server gets. */
import type { Fault, FaultRule } from './socrata-requests';

export class FaultSchedule {
  private rules: FaultRule[] = [];

  /** Copies the rules: `times` counts down in the copy, never in the caller's objects. */
  set(rules: FaultRule[]): void {
    this.rules = rules.map((r) => ({ ...r }));
  }

  /** The first rule that applies to request `n` (1-based) with this `$where`; a `times` rule is spent by it. */
  take(n: number, where: string | undefined): Fault | undefined {
    for (const rule of this.rules) {
      if (rule.whereIncludes !== undefined && !where?.includes(rule.whereIncludes)) continue;
      if (rule.requests?.includes(n)) return rule;
      if (rule.times !== undefined && rule.times > 0) {
        rule.times--;
        return rule;
      }
    }
    return undefined;
  }
}
