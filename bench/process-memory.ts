/**
 * Peak resident memory of any process of ours (VmHWM in /proc/<pid>/status, as bench/peak-rss.ts
 * reads it for the current process), and resetting it so the next reading is the peak of one
 * phase only (`5` written to /proc/<pid>/clear_refs sets the high-water mark to the current RSS).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export function peakRssOf(pid: number | 'self'): number | undefined {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return hwm ? Number(hwm[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** false where the kernel refuses (then readings are peaks since the process started). */
export function resetPeakRss(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
