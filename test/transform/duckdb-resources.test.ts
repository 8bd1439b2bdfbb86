/**
 * The DuckDB engine opens with the resource settings of duckdb-resources.ts (read back from
 * DuckDB itself with current_setting), from the environment or the defaults, and a bad value is
 * a one-line error naming the variable.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { DuckDbEngine } from '../../containers/transform/src/duckdb-engine';
import { DEFAULT_LOCAL_MEMORY_LIMIT, duckDbResources } from '../../containers/transform/src/duckdb-resources';

const REPO = path.join(import.meta.dirname, '..', '..');
const dataset = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
const VARS = ['DUCKDB_MEMORY_LIMIT', 'DUCKDB_THREADS', 'DUCKDB_TEMP_DIRECTORY', 'DUCKDB_PRESERVE_INSERTION_ORDER'] as const;

let root: string;
const saved: Partial<Record<(typeof VARS)[number], string>> = {};
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'duckdb-resources-'));
  for (const v of VARS) {
    if (process.env[v] !== undefined) saved[v] = process.env[v];
    delete process.env[v];
  }
});
after(async () => {
  for (const v of VARS) {
    if (saved[v] !== undefined) process.env[v] = saved[v];
    else delete process.env[v];
  }
  await rm(root, { recursive: true, force: true });
});

async function settings(): Promise<Record<string, unknown>> {
  const engine = await DuckDbEngine.open({ dataset, rawDir: path.join(root, 'raw'), curatedDir: path.join(root, 'curated'), runId: 'r1' });
  try {
    const [row] = await engine.rows(
      "SELECT current_setting('memory_limit') AS memory_limit, current_setting('threads') AS threads, " +
        "current_setting('temp_directory') AS temp_directory, current_setting('preserve_insertion_order') AS preserve_insertion_order",
    );
    return row!;
  } finally {
    await engine.close();
  }
}

/** DuckDB reports limits in its own units (1GB → "953.6 MiB"): compare in bytes, to 1%. */
function bytes(s: string): number {
  const m = /^([\d.]+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/i.exec(String(s).trim());
  assert.ok(m, `a size: ${s}`);
  const unit: Record<string, number> = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };
  return Number(m[1]) * unit[m[2]!.toLowerCase()]!;
}
const near = (a: number, b: number): boolean => Math.abs(a - b) / b < 0.01;

test('defaults: 600 MB, every core, spill into the OS temp directory, insertion order not kept', async () => {
  const s = await settings();
  assert.ok(near(bytes(String(s.memory_limit)), bytes(DEFAULT_LOCAL_MEMORY_LIMIT)), `memory_limit ${s.memory_limit}`);
  assert.equal(Number(s.threads), availableParallelism());
  assert.equal(s.temp_directory, path.join(tmpdir(), `duckdb-spill-${process.pid}`));
  assert.equal(s.preserve_insertion_order, false);
});

test('from the environment: what DuckDB runs with is what was asked, and the spill directory exists', async () => {
  process.env.DUCKDB_MEMORY_LIMIT = '300MB';
  process.env.DUCKDB_THREADS = '1';
  process.env.DUCKDB_TEMP_DIRECTORY = path.join(root, 'nested', 'spill');
  process.env.DUCKDB_PRESERVE_INSERTION_ORDER = 'true';
  try {
    const s = await settings();
    assert.ok(near(bytes(String(s.memory_limit)), 300e6), `memory_limit ${s.memory_limit}`);
    assert.equal(Number(s.threads), 1);
    assert.equal(s.temp_directory, path.join(root, 'nested', 'spill', `duckdb-spill-${process.pid}`));
    assert.ok(existsSync(String(s.temp_directory)), 'created up front (DuckDB makes only the last level)');
    assert.equal(s.preserve_insertion_order, true);
  } finally {
    for (const v of VARS) delete process.env[v];
  }
});

test('in a container with a memory limit, 75% of it', () => {
  const r = duckDbResources({}, { ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/v4/x' });
  // This machine may or may not have a cgroup limit: either 75% of it, or the local default.
  assert.ok(/^\d+MiB$/.test(r.memory_limit) || r.memory_limit === DEFAULT_LOCAL_MEMORY_LIMIT, r.memory_limit);
  assert.equal(duckDbResources({ memoryLimit: '2GB' }, { DUCKDB_MEMORY_LIMIT: '1GB' }).memory_limit, '2GB', 'the engine option wins');
});

test('a bad value is one line naming the variable', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DUCKDB_MEMORY_LIMIT: 'lots' }, /^DUCKDB_MEMORY_LIMIT must be a size like 1GB or 800MB, got "lots"$/],
    [{ DUCKDB_THREADS: '0' }, /^DUCKDB_THREADS must be a whole number ≥ 1, got "0"$/],
    [{ DUCKDB_THREADS: '1.5' }, /^DUCKDB_THREADS must be/],
    [{ DUCKDB_PRESERVE_INSERTION_ORDER: 'yes' }, /^DUCKDB_PRESERVE_INSERTION_ORDER must be true or false, got "yes"$/],
  ];
  for (const [env, message] of cases) assert.throws(() => duckDbResources({}, { ...env, DUCKDB_TEMP_DIRECTORY: root }), { name: 'DuckDbResourcesError', message });
});
