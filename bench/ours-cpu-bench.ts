/**
 * `npx tsx bench/ours-cpu-bench.ts [--rows N] [--runs R] [--profile '<json>' | --profile <index>]`:
 * only our fetcher (the bench's bundled contender, same servers) at N rows, R times, over loopback or
 * through one source profile (an index into BENCH_PROFILES or a profile as JSON), printing wall
 * time and CPU-seconds (user + system, and system alone) per 100,000 rows. The part of
 * `npm run bench` that measures CPU per row, runnable alone; `BENCH_OURS_NODE_FLAGS` profiles it
 * (bench/contenders.ts). docs/bench.md, "Where CPU per row goes", has its figures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadDatasetFile } from '../runtime/dataset-config';
import { BENCH_PROFILES, type SourceProfile } from '../local/source-profile';
import { bundleWorker } from './contenders';
import { runFetchBench, startBenchSource, warmUp } from './fetch-bench';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, runs: { type: 'string', default: '3' }, profile: { type: 'string', default: '0' } } });
const rows = Number(values.rows);
const runs = Number(values.runs);
const profile: SourceProfile | undefined = values.profile.startsWith('{') ? (JSON.parse(values.profile) as SourceProfile) : BENCH_PROFILES[Number(values.profile)];
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(runs) || runs < 1 || !profile) {
  console.error(`ours-cpu-bench: --rows and --runs take positive integers, --profile an index below ${BENCH_PROFILES.length} or a profile as JSON`);
  process.exit(2);
}
const dataset = loadDatasetFile(path.join(import.meta.dirname, '..', 'datasets', 'sf-fire-incidents.json'));
const workDir = await mkdtemp(path.join(tmpdir(), 'ours-cpu-'));
try {
  const worker = await bundleWorker(path.join(workDir, 'worker'));
  const socrata = await startBenchSource(dataset, rows, 1, path.join(workDir, 'source'));
  try {
    await warmUp(socrata);
    for (let i = 0; i < runs; i++) {
      const o = (await runFetchBench({ dataset, rows, seed: 1, workDir, worker, log: () => {}, socrata, contenders: ['ours'], label: `run${i}`, profile })).ours!;
      const per100k = (s: number): string => ((s / o.rows) * 100_000).toFixed(2);
      console.log(`${profile.name}: ${o.rows} rows in ${o.seconds.toFixed(2)} s, CPU-s per 100k rows ${per100k(o.cpuSeconds)} (system ${per100k(o.cpuSystemSeconds)}), peak RSS ${(o.peakRssBytes / 1e6).toFixed(0)} MB`);
      await rm(o.dataDir!, { recursive: true, force: true });
    }
  } finally {
    await socrata.close();
  }
} finally {
  await rm(workDir, { recursive: true, force: true });
}
