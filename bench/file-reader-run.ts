/**
 * Child process of the file-reader table (bench/file-reader-bench.ts): reads a generated CSV of
 * the given size through readRecords and reports rows, time and its own peak RSS. The file is
 * never written or held whole: one block of rows (~4 MB, ending at a row end) is built once and
 * handed out again and again, as the same Buffer, so generating costs nothing per byte; gzipped,
 * the block is compressed once and the stream is that member repeated (gzip allows concatenated
 * members, and gunzip reads them as one text). What is measured is the reader: gunzip, scanning,
 * decoding, one object per row.
 */
import { gzipSync } from 'node:zlib';
import { readRecords } from '../runtime/file-formats';
import { ownPeakRssBytes } from './peak-rss';

export interface FileReaderRunSpec {
  /** Decompressed bytes of CSV to read (rounded up to whole blocks). */
  bytes: number;
  gzip: boolean;
}

export interface FileReaderRunReport {
  rows: number;
  problems: number;
  /** Decompressed CSV bytes read (header included). */
  bytes: number;
  /** Bytes the reader was handed (the gzip stream when gzipped). */
  inputBytes: number;
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** RSS after imports and building the block, before reading. */
  idleRssBytes: number;
}

const HEADER = 'accident_index,date,time,police_force,severity,vehicles,casualties,longitude,latitude,road,description,junction,weather,lsoa\r\n';
const BLOCK_TARGET_BYTES = 4 * 1024 * 1024;

/** One block of rows shaped like a road-accident extract: quoted commas, doubled quotes, a quoted newline, empty fields, non-ASCII. */
export function csvBlock(): { text: Buffer; rows: number } {
  const lines: string[] = [];
  let size = 0;
  let i = 0;
  while (size < BLOCK_TARGET_BYTES) {
    const note =
      i % 50 === 0 ? `"Collision at junction, ""give way"" ignored\nsecond line"` : i % 7 === 0 ? `"Wet road, dark, street lights lit"` : i % 11 === 0 ? '' : `Slight impact near Café ${i % 97}`;
    const row =
      `2021${String(i).padStart(9, '0')},${1 + (i % 28)}/0${1 + (i % 9)}/2021,${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')},` +
      `${i % 99},${1 + (i % 3)},${1 + (i % 4)},${1 + (i % 2)},${(-2.5 + (i % 1000) / 1000).toFixed(6)},${(51 + (i % 500) / 1000).toFixed(6)},` +
      `A${i % 999},${note},${i % 5 === 0 ? '' : 'T or staggered junction'},${i % 3 === 0 ? '"Raining, no high winds"' : 'Fine'},E0${String(i % 99999).padStart(7, '0')}\r\n`;
    lines.push(row);
    size += Buffer.byteLength(row);
    i++;
  }
  return { text: Buffer.from(lines.join('')), rows: i };
}

async function* generated(totalBytes: number, gzip: boolean, counter: { bytes: number; input: number; rows: number }): AsyncGenerator<Buffer> {
  const block = csvBlock();
  const header = Buffer.from(HEADER);
  const [first, repeated] = gzip ? [gzipSync(header, { level: 1 }), gzipSync(block.text, { level: 1 })] : [header, block.text];
  counter.bytes += header.length;
  counter.input += first.length;
  yield first;
  while (counter.bytes < totalBytes) {
    counter.bytes += block.text.length;
    counter.input += repeated.length;
    counter.rows += block.rows;
    // 64 KiB at a time, as a socket or file stream would hand them out.
    for (let at = 0; at < repeated.length; at += 65_536) yield repeated.subarray(at, at + 65_536);
  }
}

export async function runFileReader(spec: FileReaderRunSpec): Promise<FileReaderRunReport> {
  csvBlock(); // warm: the block's construction is not what is measured
  const idleRssBytes = process.memoryUsage.rss();
  const counter = { bytes: 0, input: 0, rows: 0 };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rows = 0;
  let problems = 0;
  for await (const item of readRecords(generated(spec.bytes, spec.gzip, counter), { format: 'csv', compression: spec.gzip ? 'gzip' : 'none' })) {
    if ('problem' in item) problems++;
    else rows++;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (rows !== counter.rows || problems) throw new Error(`read ${rows} rows and ${problems} problems, generated ${counter.rows} rows`);
  return { rows, problems, bytes: counter.bytes, inputBytes: counter.input, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: ownPeakRssBytes(), idleRssBytes };
}

if (process.send && process.argv[2]) {
  runFileReader(JSON.parse(process.argv[2]) as FileReaderRunSpec).then(
    (report) => process.send!(report, () => process.exit(0)),
    (err: unknown) => {
      console.error((err as Error).stack ?? String(err));
      process.exit(1);
    },
  );
}
