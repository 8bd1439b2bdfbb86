/**
 * The transform image without Docker: the Dockerfile's esbuild bundle, a runtime folder laid out
 * as its last stage lays it out (only @duckdb and detect-libc in node_modules, the models beside
 * dist/), run with plain node as the task would run it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { RawRowSerializer } from '../../lambdas/fetcher/raw-row';
import { generateFireIncidents } from '../../local/fire-incidents-generator';

const run = promisify(execFile);
const REPO = path.join(import.meta.dirname, '..', '..');
const DOCKERFILE = path.join(REPO, 'containers', 'transform', 'Dockerfile');
const BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

let root: string;
let app: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'transform-image-'));
  app = path.join(root, 'app');
  await build({
    entryPoints: [path.join(REPO, 'containers', 'transform', 'src', 'entry.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    external: ['@duckdb/node-api'],
    banner: { js: BANNER },
    outfile: path.join(app, 'dist', 'entry.mjs'),
    logLevel: 'silent',
  });
  for (const dep of ['@duckdb', 'detect-libc']) {
    await cp(path.join(REPO, 'node_modules', dep), path.join(app, 'node_modules', dep), { recursive: true, dereference: true });
  }
  await cp(path.join(REPO, 'containers', 'transform', 'models'), path.join(app, 'models'), { recursive: true });
  await writeFile(path.join(app, 'package.json'), '{"type":"module","private":true}\n');
});
after(() => rm(root, { recursive: true, force: true }));

async function task(env: Record<string, string>): Promise<{ code: number; lines: Record<string, unknown>[] }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATASET_CONFIG|ENGINE|RAW_LOCATION|CURATED_LOCATION|RUN_ID|ATHENA_WORKGROUP|RAW_DATABASE|CURATED_DATABASE|APP_TOKEN)$/.test(k)));
  try {
    const { stdout } = await run(process.execPath, [path.join(app, 'dist', 'entry.mjs')], { cwd: app, env: { ...clean, ...env }, maxBuffer: 16 << 20 });
    return { code: 0, lines: stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, lines: (e.stdout ?? '').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
  }
}

describe('transform container image (bundle + runtime layout, no Docker)', () => {
  test('the Dockerfile builds this bundle and keeps exactly these runtime files', async () => {
    const dockerfile = await readFile(DOCKERFILE, 'utf8');
    for (const piece of [
      'containers/transform/src/entry.ts', '--bundle', '--platform=node', '--target=node22', '--format=esm',
      '--external:@duckdb/node-api', 'node_modules/@duckdb/', 'node_modules/detect-libc/', 'COPY containers/transform/models/ models/',
      'USER node', 'ENTRYPOINT ["node", "dist/entry.mjs"]',
      // ECS copies a VOLUME path's owner and mode into the bind mount at the same path (else root 0755).
      'RUN chown node:node /tmp && chmod 1777 /tmp', 'VOLUME ["/tmp"]',
    ]) {
      assert.ok(dockerfile.includes(piece), `Dockerfile no longer contains ${piece}: update this test with it`);
    }
    assert.match(dockerfile, /FROM \$\{NODE_IMAGE\} AS runtime/);
    assert.match(dockerfile, /ARG NODE_IMAGE=node:22\.\d+\.\d+-bookworm-slim/, 'base image pinned to an exact Node 22 version');
  });

  test('the bundled task transforms a raw zone and exits 0 with its summary', async () => {
    const dataset = JSON.parse(await readFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'), 'utf8')) as Record<string, unknown>;
    const rows = generateFireIncidents({ rows: 800, seed: 9 });
    const s = new RawRowSerializer({ pointColumns: ['point'], runId: 'seed-run', ingestedAt: '2025-07-01T00:00:00.000Z' });
    const rawDir = path.join(root, 'raw');
    const objectDir = path.join(rawDir, 'raw', 'sf-fire-incidents', 'ingest_date=2025-07-01');
    await mkdir(objectDir, { recursive: true });
    await writeFile(path.join(objectDir, 'stream-1.gz'), gzipSync(rows.map((r) => s.line(r)).join('')));
    const res = await task({
      DATASET_CONFIG: JSON.stringify(dataset),
      ENGINE: 'duckdb',
      RAW_LOCATION: rawDir,
      CURATED_LOCATION: path.join(root, 'curated'),
      RUN_ID: 'image-run-1',
      APP_TOKEN: 'secret-token-never-logged',
    });
    assert.equal(res.code, 0, JSON.stringify(res.lines.at(-1)));
    const finished = res.lines.find((l) => l.message === 'transform finished') as { summary: { curatedRows: number; status: string; marts: unknown[] } } | undefined;
    assert.equal(finished?.summary.status, 'succeeded');
    assert.equal(finished?.summary.curatedRows, new Set(rows.map((r) => r.id)).size);
    assert.equal(finished?.summary.marts.length, 4, 'the models folder was found beside dist/');
    assert.ok(!JSON.stringify(res.lines).includes('secret-token-never-logged'));
  });

  test('a bad configuration exits 2 with one clear line', async () => {
    const res = await task({ DATASET_CONFIG: '{"name":"x"}', ENGINE: 'duckdb', RAW_LOCATION: root, CURATED_LOCATION: root, RUN_ID: 'r' });
    assert.equal(res.code, 2);
    assert.match(String(res.lines.at(-1)?.message), /DATASET_CONFIG|dataset/i);
  });
});
