/** A refused acquire is published as the SkippedRuns metric (EMF on stdout, as Lambda ships it). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const HANDLER = path.join(import.meta.dirname, '..', '..', 'lambdas', 'run-lease', 'handler.ts');

test('the second run is refused and counted once in SkippedRuns, with its dataset; the first emits no metric', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lease-metric-'));
  const script = `
    const { handler } = await import(${JSON.stringify(HANDLER)});
    const a = await handler({ action: 'acquire', runId: 'run-a' });
    process.stdout.write('RESULT ' + JSON.stringify(a) + '\\n');
    const b = await handler({ action: 'acquire', runId: 'run-b' });
    process.stdout.write('RESULT ' + JSON.stringify(b) + '\\n');`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      DATASET_NAME: 'sf-fire-incidents',
      STATE_LOCATION: dir,
      LEASE_SECONDS: '600',
      POWERTOOLS_SERVICE_NAME: 'run-lease-sf-fire-incidents',
      POWERTOOLS_METRICS_NAMESPACE: 'SocrataPipeline/dev',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_DEV: 'false',
    },
  });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.split('\n').filter(Boolean);
  const results = lines.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)) as { acquired: boolean; holder: string });
  assert.deepEqual(results.map((r) => [r.acquired, r.holder]), [[true, 'run-a'], [false, 'run-a']]);
  const emf = lines.filter((l) => l.startsWith('{') && l.includes('"_aws"')).map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string }> }> } });
  assert.equal(emf.length, 1, run.stdout);
  const m = emf[0]!;
  assert.equal(m._aws.CloudWatchMetrics[0]!.Namespace, 'SocrataPipeline/dev');
  assert.deepEqual(m._aws.CloudWatchMetrics[0]!.Metrics.map((x) => x.Name), ['SkippedRuns']);
  assert.equal(m.SkippedRuns, 1);
  assert.equal(m.Dataset, 'sf-fire-incidents');
  assert.equal(m.service, 'run-lease-sf-fire-incidents');
});
