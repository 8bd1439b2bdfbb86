/**
 * Peak resident memory of THIS process only. `process.resourceUsage().maxRSS` is not that on
 * Linux: a child created by fork + exec inherits, as its starting maxRSS, the resident memory the
 * parent had at fork time outside the V8 heap (Buffers, malloc arenas), because the kernel keeps
 * the high-water mark of the pre-exec copy. The bench's parent holds the local Socrata and
 * Firehose servers, so a contender's maxRSS could report the servers' memory, not its own.
 * `VmHWM` in /proc/self/status is the high-water mark of the process's own address space.
 */
import { readFileSync } from 'node:fs';

export function ownPeakRssBytes(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // Not Linux (no /proc): maxRSS is the best figure there is.
  }
  return process.resourceUsage().maxRSS * 1024;
}
