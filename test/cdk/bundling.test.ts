/** The one test that really bundles the fetcher with esbuild (locally, no Docker). */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { synth } from './app-fixture';

test('esbuild bundles the fetcher into an ESM handler the Lambda runtime can load', () => {
  const result = synth({ env: 'dev', bundle: true });
  const fn = Object.values(result.templates.pipeline.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }))[0] as {
    Properties: { Code: { S3Key: string } };
  };
  const hash = fn.Properties.Code.S3Key.replace(/\.zip$/, '');
  const manifest = JSON.parse(readFileSync(path.join(result.outdir, 'SocrataPipeline-dev-Pipeline.assets.json'), 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const assetDir = path.join(result.outdir, manifest.files[hash]!.source.path);
  const files = readdirSync(assetDir);
  assert.ok(files.includes('index.mjs'), `bundle files: ${files.join(', ')}`);
  const code = readFileSync(path.join(assetDir, 'index.mjs'), 'utf8');
  assert.match(code, /export\s*\{[^}]*\bas handler\b|export\s*\{[^}]*\bhandler\b/);
  assert.match(code, /createRequire/);
  // The AWS SDK clients the fetcher uses are inside the bundle, not expected from the runtime.
  assert.match(code, /PutRecordBatch/);
});
