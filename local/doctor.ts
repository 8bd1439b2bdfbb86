/**
 * `npm run doctor`: preflight of a first deploy (local/doctor-checks.ts). Prints each check as
 * ok / MISSING / warn / skipped with its fix; exits 1 when a deploy would fail.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { exitCodeOf, formatResults, runChecks, type DoctorDeps } from './doctor-checks';

const ROOT = path.join(import.meta.dirname, '..');

const deps: DoctorDeps = {
  nodeVersion: process.version,
  arch: process.arch,
  env: process.env,
  run: (command, args) => {
    const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  },
  getParameter: async (name, region) => {
    const ssm = new SSMClient({ region });
    try {
      return (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
    } catch (err) {
      if (err instanceof ParameterNotFound) return undefined;
      throw err;
    } finally {
      ssm.destroy();
    }
  },
  readFile: (relativePath) => readFileSync(path.join(ROOT, relativePath), 'utf8'),
  datasetsDir: path.resolve(process.argv[2] ?? path.join(ROOT, 'datasets')),
};

const results = await runChecks(deps);
process.stdout.write(`${formatResults(results)}\n`);
process.exitCode = exitCodeOf(results);
