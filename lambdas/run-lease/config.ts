/** The run-lease Lambda's environment, read in this one place (set by lib/constructs/run-lease-function.ts). */
import { ConfigError } from '../../runtime/pipeline-error';
import { requiredVariables } from '../../runtime/environment-variables';

export interface RunLeaseConfig {
  datasetName: string;
  /** `s3://<raw bucket>` or a local directory. */
  stateLocation: string;
  leaseSeconds: number;
}

export class RunLeaseConfigError extends ConfigError {
  override name = 'RunLeaseConfigError';
}

export function readRunLeaseConfig(env: NodeJS.ProcessEnv = process.env): RunLeaseConfig {
  const problems: string[] = [];
  const text = requiredVariables(env, problems);
  const datasetName = text('DATASET_NAME');
  const stateLocation = text('STATE_LOCATION');
  const rawSeconds = text('LEASE_SECONDS');
  const leaseSeconds = Number(rawSeconds);
  if (rawSeconds && (!Number.isInteger(leaseSeconds) || leaseSeconds < 60)) {
    problems.push(`LEASE_SECONDS="${rawSeconds}" must be an integer of at least 60`);
  }
  if (problems.length) throw new RunLeaseConfigError(`Run-lease configuration: ${problems.join('; ')} (set by the RunLease construct)`);
  return { datasetName, stateLocation, leaseSeconds };
}
