/**
 * `npx tsx bench/row-stream-bench.ts [--mb 50] [--parsers-dir /tmp/sj]`: how fast can a page be
 * parsed as it arrives? A measurement, not a test. Contenders, each in its own process reading the
 * same generated body from a file in 64 KiB chunks (what a socket hands out):
 * - `scanner`: lambdas/fetcher/row-stream.ts (framing scanner on bytes, then JSON.parse per row);
 * - `streamparser`: @streamparser/json's JSONParser with `paths: ['$.*']` (a tokenizer + assembler);
 * - `stream-json`: stream-json's `streamArray.withParserAsStream()` (the same, as Node streams);
 * - `whole-page`: today's fetcher, the whole body kept and parsed with one JSON.parse (reference).
 * The npm parsers are not dependencies of this project: install them in a scratch directory
 * (`mkdir /tmp/sj && cd /tmp/sj && npm init -y && npm i @streamparser/json stream-json`) and pass
 * it with --parsers-dir; a missing one is reported as skipped. Results: docs/bench.md.
 */
import { fork } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FireIncidentGenerator } from '../local/fire-incidents-generator';
import { RowStreamParser } from '../lambdas/fetcher/row-stream';
import { ownPeakRssBytes } from './peak-rss';
import { childReport } from './child-report';

const CONTENDERS = ['scanner', 'streamparser', 'stream-json', 'whole-page'] as const;
type Contender = (typeof CONTENDERS)[number];
const CHUNK = 64 * 1024;

interface Measured {
  contender: Contender;
  rows: number;
  /** Rows with a point: the same for every contender, or one of them parsed wrongly. */
  points: number;
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  idleRssBytes: number;
}

/** One page body like the local Socrata server's (`[`, rows separated by `,\n`, `]`), about `mb` MB. */
function generateBody(mb: number): { body: Buffer; rows: number } {
  const gen = new FireIncidentGenerator({ seed: 1 });
  const parts: string[] = [];
  let bytes = 2;
  let i = 0;
  while (bytes < mb * 1e6) {
    const row = { ':id': `row-${String(i).padStart(8, '0')}`, ':updated_at': '2024-01-02T03:04:05.000Z', ...gen.next() };
    const text = JSON.stringify(row);
    parts.push(text);
    bytes += text.length + 2;
    i++;
  }
  return { body: Buffer.from(`[\n${parts.join(',\n')}\n]`), rows: i };
}

function chunks(file: string): AsyncIterable<Buffer> {
  return createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
}

interface StreamParserModule {
  JSONParser: new (opts: { paths: string[]; keepStack: boolean }) => {
    onValue: (info: { value: unknown }) => void;
    onError: (err: Error) => void;
    write(chunk: Uint8Array): void;
    end(): void;
    readonly isEnded: boolean;
  };
}
interface StreamJsonModule {
  default: { withParserAsStream(): NodeJS.ReadWriteStream };
}

async function measure(contender: Contender, file: string, parsersDir: string): Promise<Measured> {
  let rows = 0;
  let points = 0;
  const count = (row: Record<string, unknown>): void => {
    rows++;
    if (row.point !== undefined) points++;
  };
  let work: () => Promise<void>;
  if (contender === 'scanner') {
    work = async () => {
      const parser = new RowStreamParser();
      for await (const chunk of chunks(file)) for (const r of parser.push(chunk)) count(r.row);
      parser.end();
    };
  } else if (contender === 'whole-page') {
    work = async () => {
      const parts: Buffer[] = [];
      for await (const chunk of chunks(file)) parts.push(chunk);
      for (const row of JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>[]) count(row);
    };
  } else if (contender === 'streamparser') {
    const mod = (await import(pathToFileURL(path.join(parsersDir, 'node_modules/@streamparser/json/dist/mjs/index.js')).href)) as StreamParserModule;
    work = async () => {
      const parser = new mod.JSONParser({ paths: ['$.*'], keepStack: false });
      parser.onValue = ({ value }) => count(value as Record<string, unknown>);
      let failure: Error | undefined;
      parser.onError = (err) => (failure = err);
      for await (const chunk of chunks(file)) parser.write(chunk);
      // It ends itself at the closing "]"; end() then only checks that it did.
      if (!parser.isEnded) parser.end();
      if (failure) throw failure;
    };
  } else {
    const mod = (await import(pathToFileURL(path.join(parsersDir, 'node_modules/stream-json/src/streamers/stream-array.js')).href)) as StreamJsonModule;
    work = async () => {
      const pipeline = createReadStream(file, { highWaterMark: CHUNK }).pipe(mod.default.withParserAsStream());
      for await (const item of pipeline as AsyncIterable<{ value: Record<string, unknown> }>) count(item.value);
    };
  }
  const idleRssBytes = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { contender, rows, points, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: ownPeakRssBytes(), idleRssBytes };
}

function runChild(contender: Contender, file: string, parsersDir: string): Promise<Measured> {
  const child = fork(import.meta.filename, ['--child', contender, file, parsersDir], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  return childReport<Measured>(child, contender);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') {
    const result = await measure(argv[1] as Contender, argv[2]!, argv[3]!);
    await new Promise<void>((resolve, reject) => process.send!(result, (err: Error | null) => (err ? reject(err) : resolve())));
    return;
  }
  let mb = 50;
  let parsersDir = '/tmp/sj';
  let repeats = 3;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--mb') mb = Number(argv[++i]);
    else if (argv[i] === '--parsers-dir') parsersDir = argv[++i]!;
    else if (argv[i] === '--repeats') repeats = Number(argv[++i]);
    else if (argv[i] === '--help') {
      console.log('usage: npx tsx bench/row-stream-bench.ts [--mb 50] [--repeats 3] [--parsers-dir /tmp/sj]');
      return;
    } else {
      console.error(`row-stream-bench: unknown option "${argv[i]}"; see --help`);
      process.exitCode = 2;
      return;
    }
  }
  if (!(mb > 0) || !(repeats >= 1)) {
    console.error('row-stream-bench: --mb and --repeats need positive numbers');
    process.exitCode = 2;
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'row-stream-bench-'));
  try {
    const { body, rows } = generateBody(mb);
    const file = path.join(dir, 'page.json');
    await writeFile(file, body);
    console.error(`body: ${rows.toLocaleString('en-US')} fire-incident rows, ${(body.length / 1e6).toFixed(1)} MB, read in ${CHUNK / 1024} KiB chunks; best of ${repeats} runs each`);
    const lines = ['| parser | rows | rows/s | MB/s | CPU-s | peak RSS | RSS above idle |', '|---|---:|---:|---:|---:|---:|---:|'];
    let referencePoints: number | undefined;
    for (const contender of CONTENDERS) {
      const pkgDir = contender === 'streamparser' ? '@streamparser/json' : contender === 'stream-json' ? 'stream-json' : undefined;
      if (pkgDir && !existsSync(path.join(parsersDir, 'node_modules', pkgDir))) {
        lines.push(`| ${contender} | skipped: not installed in ${parsersDir} | | | | | |`);
        continue;
      }
      let best: Measured | undefined;
      for (let r = 0; r < repeats; r++) {
        const m = await runChild(contender, file, parsersDir);
        if (m.rows !== rows) throw new Error(`${contender} counted ${m.rows} rows, the body has ${rows}`);
        if (best && m.points !== best.points) throw new Error(`${contender} counted a different number of points between runs`);
        if (!best || m.seconds < best.seconds) best = m;
      }
      const m = best!;
      referencePoints ??= m.points;
      if (m.points !== referencePoints) throw new Error(`${contender} counted ${m.points} rows with a point, the first parser ${referencePoints}`);
      lines.push(
        `| ${contender} | ${m.rows.toLocaleString('en-US')} | ${Math.round(m.rows / m.seconds).toLocaleString('en-US')} | ${(body.length / 1e6 / m.seconds).toFixed(1)} | ` +
          `${m.cpuSeconds.toFixed(2)} | ${(m.peakRssBytes / 1e6).toFixed(0)} MB | ${((m.peakRssBytes - m.idleRssBytes) / 1e6).toFixed(0)} MB |`,
      );
      console.error(`  ${contender}: ${m.seconds.toFixed(2)} s, ${m.points} points`);
    }
    console.log(lines.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`row-stream-bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
