/** Records and stream shared by the journal crash tests and their child process. */
import type { FirehoseStreamConfig } from '../../local/firehose-server';

export interface JournalChildConfig {
  dir: string;
  calls: number;
  recordsPerCall: number;
  recordBytes: number;
  bufferingSizeMiB: number;
}

export const childStream = (c: Pick<JournalChildConfig, 'bufferingSizeMiB'>): FirehoseStreamConfig => ({
  name: 'crash-raw',
  dataPrefix: 'raw/crash/ingest_date=!{timestamp:yyyy-MM-dd}/',
  errorPrefix: 'errors/crash/!{firehose:error-output-type}/',
  // Never by interval: only size, a flush, or the next start delivers.
  bufferingIntervalSeconds: 900,
  bufferingSizeMiB: c.bufferingSizeMiB,
});

/** Newline-terminated records named `c<call>r<n>`, padded to `recordBytes`. */
export function childRecords(c: Pick<JournalChildConfig, 'recordsPerCall' | 'recordBytes'>, call: number): Buffer[] {
  return Array.from({ length: c.recordsPerCall }, (_, r) => {
    const name = `c${call}r${r}`;
    return Buffer.from(`${name} ${'.'.repeat(Math.max(0, c.recordBytes - name.length - 2))}\n`);
  });
}
