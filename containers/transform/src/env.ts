/**
 * The container's environment, read and validated in one place. The CDK transform task sets
 * these variables (REBUILD only when an operator starts a rebuild by hand); APP_TOKEN may be
 * present but the transform never uses or logs it.
 */
import { parseDataset, type DatasetConfig } from '../../../runtime/dataset-config';
import { ConfigError } from '../../../runtime/pipeline-error';
import { requiredVariables } from '../../../runtime/environment-variables';

export interface TransformEnv {
  dataset: DatasetConfig;
  engine: 'athena' | 'duckdb';
  /** `s3://bucket` or a local directory mirroring the raw bucket. */
  rawLocation: string;
  /** `s3://bucket` or a local directory mirroring the curated bucket. */
  curatedLocation: string;
  runId: string;
  /** REBUILD=true: rebuild curated from the whole raw zone (see runTransform's `rebuild`). */
  rebuild: boolean;
  /** UNDECLARED_COLUMNS: the fetcher's schema drift (a JSON array of column names), for the summary and report. */
  undeclaredColumns: string[];
  /** SELECT: marts to build and test (`--select` terms, comma or space separated); absent: every mart. */
  select?: string[];
  /** TESTS_ONLY=true: merge and build nothing, run the tests on the existing tables. */
  testsOnly: boolean;
  /** Required when engine is athena. */
  athena?: { workgroup: string; rawDatabase: string; curatedDatabase: string };
}

export class EnvError extends ConfigError {
  override name = 'EnvError';
}

/** Parse the environment; one error lists every missing or invalid variable. */
export function readTransformEnv(env: NodeJS.ProcessEnv): TransformEnv {
  const problems: string[] = [];
  const need = requiredVariables(env, problems);
  const engine = need('ENGINE');
  if (engine && engine !== 'athena' && engine !== 'duckdb') problems.push(`ENGINE must be "athena" or "duckdb", got "${engine}"`);
  const rawLocation = need('RAW_LOCATION');
  const curatedLocation = need('CURATED_LOCATION');
  const runId = need('RUN_ID');
  if (runId && !/^[A-Za-z0-9._:-]{1,128}$/.test(runId)) problems.push('RUN_ID must be 1-128 characters of A-Z a-z 0-9 . _ : -');
  const rebuildValue = env.REBUILD?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false'].includes(rebuildValue)) problems.push(`REBUILD must be "true" or "false", got "${env.REBUILD}"`);
  const testsOnlyValue = env.TESTS_ONLY?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false'].includes(testsOnlyValue)) problems.push(`TESTS_ONLY must be "true" or "false", got "${env.TESTS_ONLY}"`);
  if (testsOnlyValue === 'true' && rebuildValue === 'true') problems.push('TESTS_ONLY and REBUILD exclude each other: a tests-only run changes no table');
  const selectValue = env.SELECT?.trim();
  const select = selectValue ? selectValue.split(/[\s,]+/).filter(Boolean) : undefined;
  let undeclaredColumns: string[] = [];
  const undeclaredValue = env.UNDECLARED_COLUMNS?.trim();
  if (undeclaredValue) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(undeclaredValue);
    } catch {
      parsed = undefined;
    }
    if (Array.isArray(parsed) && parsed.every((c) => typeof c === 'string')) undeclaredColumns = parsed;
    else problems.push(`UNDECLARED_COLUMNS must be a JSON array of column names, got ${JSON.stringify(undeclaredValue.slice(0, 100))}`);
  }
  const raw = need('DATASET_CONFIG');
  let dataset: DatasetConfig | undefined;
  if (raw) {
    try {
      dataset = parseDataset(JSON.parse(raw), 'DATASET_CONFIG');
    } catch (err) {
      problems.push(err instanceof SyntaxError ? `DATASET_CONFIG is not valid JSON: ${err.message}` : (err as Error).message);
    }
  }
  let athena: TransformEnv['athena'];
  if (engine === 'athena') {
    athena = { workgroup: need('ATHENA_WORKGROUP'), rawDatabase: need('RAW_DATABASE'), curatedDatabase: need('CURATED_DATABASE') };
  }
  if (problems.length || !dataset) {
    throw new EnvError(`Invalid transform environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return {
    dataset,
    engine: engine as TransformEnv['engine'],
    rawLocation,
    curatedLocation,
    runId,
    rebuild: rebuildValue === 'true',
    undeclaredColumns,
    ...(select ? { select } : {}),
    testsOnly: testsOnlyValue === 'true',
    ...(athena ? { athena } : {}),
  };
}
