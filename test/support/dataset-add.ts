/** `npm run dataset -- add` run in-process into a fresh directory, and the one definition it wrote. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runDatasetCommand, type DatasetCommandDeps } from '../../local/dataset-command';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';

export interface AddRun {
  code: number;
  out: string;
  err: string;
  /** Where it writes (--out-dir, also its repo root). */
  dir: string;
}

/** `add <target> ...flags`; a file or S3 source must never ask for Socrata metadata. */
export async function runAdd(target: string, flags: string[], deps: Partial<DatasetCommandDeps> = {}): Promise<AddRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dataset-add-'));
  let out = '';
  let err = '';
  const code = await runDatasetCommand(['add', target, '--out-dir', dir, ...flags], {
    fetchJson: () => Promise.reject(new Error(`${target.startsWith('s3://') ? 'an S3 source' : 'a file source'} must not ask for Socrata metadata`)),
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    repoRoot: dir,
    ...deps,
  });
  return { code, out, err, dir };
}

/** The one definition a run wrote, through the loader `cdk synth` and `npm run local` use. */
export function writtenDefinition(r: AddRun): DatasetConfig {
  assert.equal(r.code, 0, r.err);
  const names = readdirSync(r.dir);
  assert.equal(names.length, 1, `one file written, got ${names.join(', ')}`);
  return loadDatasetFile(path.join(r.dir, names[0]!));
}
