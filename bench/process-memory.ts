/**
 * Peak resident memory of any process of ours (VmHWM in /proc/<pid>/status, as bench/peak-rss.ts
 * reads it for the current process), and resetting it so the next reading is the peak of one
 * phase only (`5` written to /proc/<pid>/clear_refs sets the high-water mark to the current RSS).
 * Also CPU-seconds (user + system) per process: on a shared machine wall time says little about
 * where the work is, CPU time does.
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

/** Clock ticks per second of /proc/<pid>/stat: 100 on every Linux this runs on (USER_HZ). */
const USER_HZ = 100;

/** User + system CPU-seconds a process has used so far. */
export function cpuSecondsOf(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) in parentheses: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}
