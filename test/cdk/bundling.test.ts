/** The one test that really bundles the Lambda functions with esbuild (locally, no Docker). */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { synth } from './app-fixture';

const result = synth({ env: 'dev', bundle: true });
const functions = result.templates.dataset.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }) as Record<string, { Properties: { Code: { S3Key: string } } }>;
const manifest = JSON.parse(readFileSync(path.join(result.outdir, 'SocrataPipeline-dev-Dataset-sf-fire-incidents.assets.json'), 'utf8')) as {
  files: Record<string, { source: { path: string } }>;
};

function bundleOf(hint: RegExp): string {
  const ids = Object.keys(functions).filter((id) => hint.test(id));
  assert.equal(ids.length, 1, `functions matching ${hint}: ${Object.keys(functions).join(', ')}`);
  const hash = functions[ids[0]!]!.Properties.Code.S3Key.replace(/\.zip$/, '');
  const assetDir = path.join(result.outdir, manifest.files[hash]!.source.path);
  const files = readdirSync(assetDir);
  assert.ok(files.includes('index.mjs'), `bundle files: ${files.join(', ')}`);
  const code = readFileSync(path.join(assetDir, 'index.mjs'), 'utf8');
  assert.match(code, /export\s*\{[^}]*\bas handler\b|export\s*\{[^}]*\bhandler\b/);
  assert.match(code, /createRequire/);
  return code;
}

test('esbuild bundles the fetcher into an ESM handler the Lambda runtime can load', () => {
  // The AWS SDK clients the fetcher uses are inside the bundle, not expected from the runtime.
  assert.match(bundleOf(/FetcherFunction/), /PutRecordBatch/);
});

test('esbuild bundles the run-lease function, with its S3 client and the lease key layout', () => {
  const code = bundleOf(/RunLeaseFunction/);
  assert.match(code, /PutObject/);
  assert.match(code, /leases\//);
});
