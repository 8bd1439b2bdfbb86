/**
 * Builds the whole CDK app from configuration: which environment (`-c env=`, default dev), which
 * dataset files (`-c datasetsDir=`, default `datasets/`), and the cdk-nag policy plugin. Shared by
 * `bin/app.ts` and the tests, so both synthesize exactly the same app.
 */
import path from 'node:path';
import { Tags, Validations, type App, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { isSocrata, loadDatasetDir, sourceLabel, type DatasetConfig } from '../runtime/dataset-config';
import { ENVIRONMENT_NAMES, resolveDeploySettings, type EnvironmentConfig } from './config/environment-config';
import { acknowledgeFindings } from './nag-acknowledgements';
import { dashboardRow } from './constructs/dataset-pipeline';
import { CicdStack } from './stacks/cicd-stack';
import { DatasetStack } from './stacks/dataset-stack';
import { SharedStack } from './stacks/shared-stack';
import { StorageStack } from './stacks/storage-stack';

export const DEFAULT_DATASETS_DIR = path.join(import.meta.dirname, '..', 'datasets');
export const APP_NAME = 'SocrataPipeline';

export interface PipelineApp {
  readonly config: EnvironmentConfig;
  readonly datasets: readonly DatasetConfig[];
  readonly storage: StorageStack;
  readonly shared: SharedStack;
  /** One stack per dataset file, in the order of `datasets`. */
  readonly datasetStacks: readonly DatasetStack[];
  readonly cicd: CicdStack;
}

function contextString(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`Context value "${key}" must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Stack names of an environment: `SocrataPipeline-<env>-Storage`, `-Shared`, one
 * `-Dataset-<name>` per dataset file; CI/CD is shared by the environments.
 */
export const stackNames = (env: string) => ({
  storage: `${APP_NAME}-${env}-Storage`,
  shared: `${APP_NAME}-${env}-Shared`,
  dataset: (name: string) => `${APP_NAME}-${env}-Dataset-${name}`,
  cicd: `${APP_NAME}-CiCd`,
});

export function buildPipelineApp(app: App): PipelineApp {
  const { config, cicd } = resolveDeploySettings(contextString(app, 'env') ?? 'dev', (key) => contextString(app, key));
  const datasetsDir = path.resolve(contextString(app, 'datasetsDir') ?? DEFAULT_DATASETS_DIR);
  const datasets = loadDatasetDir(datasetsDir);
  if (datasets.length === 0) throw new Error(`No dataset definitions (*.json) in ${datasetsDir}`);

  // Env-agnostic unless configured: synth needs no credentials and performs no lookups.
  const account = config.account ?? process.env.CDK_DEFAULT_ACCOUNT;
  const region = config.region ?? process.env.CDK_DEFAULT_REGION;
  const env: Environment | undefined = config.account || config.region ? { account, region } : undefined;
  const names = stackNames(config.name);

  const storage = new StorageStack(app, names.storage, {
    ...(env ? { env } : {}),
    config,
    description: `Socrata pipeline (${config.name}): key, buckets, Glue databases, Athena workgroup`,
    terminationProtection: config.removalPolicy === 'retain',
  });
  const shared = new SharedStack(app, names.shared, {
    ...(env ? { env } : {}),
    config,
    datasets: datasets.map((d) => dashboardRow(config.name, d.name)),
    description: `Socrata pipeline (${config.name}): transform network, notification topic, dashboard (${datasets.length} datasets)`,
  });
  // One stack per dataset: its description names only its own dataset (a description that listed
  // every dataset outgrew CloudFormation's 1,024 bytes at 50 datasets and made every dataset's
  // change touch one template).
  const datasetStacks = datasets.map((dataset) => {
    const stack = new DatasetStack(app, names.dataset(dataset.name), {
      ...(env ? { env } : {}),
      config,
      dataset,
      storage,
      shared,
      description: stackDescription(config.name, dataset),
    });
    stack.addStackDependency(storage);
    stack.addStackDependency(shared);
    return stack;
  });
  const cicdStack = new CicdStack(app, names.cicd, {
    ...(env ? { env } : {}),
    cicd,
    environments: ENVIRONMENT_NAMES,
    description: 'GitHub OIDC provider and per-environment deploy roles',
  });

  // Dashboards take no tags in the CloudFormation resource schema (cfn-lint E3002).
  const tagOptions = { excludeResourceTypes: ['AWS::CloudWatch::Dashboard'] };
  for (const stack of [storage, shared, ...datasetStacks]) {
    Tags.of(stack).add('project', 'socrata-pipeline', tagOptions);
    Tags.of(stack).add('environment', config.name, tagOptions);
  }
  Tags.of(cicdStack).add('project', 'socrata-pipeline', tagOptions);

  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  acknowledgeFindings({ storage, datasets: datasetStacks, cicd: cicdStack });
  return { config, datasets, storage, shared, datasetStacks, cicd: cicdStack };
}

/** The dataset stack's description; a Socrata dataset's reads as it always has (templates unchanged). */
function stackDescription(environment: string, dataset: DatasetConfig): string {
  const { source } = dataset;
  if (!isSocrata(source)) return `Ingestion pipeline (${environment}): dataset ${dataset.name} (${sourceLabel(source)})`.slice(0, 1024);
  return `Socrata pipeline (${environment}): dataset ${dataset.name} (${source.domain} ${source.datasetId})`;
}
