/**
 * What the cost model prices from the synthesized templates of one environment: the resources
 * billed by the month (customer-managed KMS keys, dashboards, alarm metrics, composite alarms,
 * secrets) and the sizes billed by use (fetcher memory, transform vCPU and memory), split into the
 * environment's fixed part (storage and shared stacks) and each dataset's part (its own stack).
 * A resource type that is neither priced here nor listed as free or usage-billed fails the
 * inventory, so a new billed resource cannot reach the templates unpriced.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { buildPipelineApp } from '../lib/pipeline-app';
import { isSocrata } from '../runtime/dataset-config';

const REPO_ROOT = path.join(import.meta.dirname, '..');

/** Billed per resource-month: what `monthlyCost` has a price for. */
export const MONTHLY_PRICED_TYPES = ['AWS::KMS::Key', 'AWS::CloudWatch::Dashboard', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm', 'AWS::SecretsManager::Secret'] as const;

/**
 * Free, or billed only by use (requests, GB, compute time) and priced through the model's usage
 * inputs: definitions, roles and policies, the network without NAT, catalog objects.
 */
export const FREE_OR_USAGE_BILLED_TYPES = new Set([
  'AWS::Athena::WorkGroup', 'AWS::CDK::Metadata', 'AWS::EC2::InternetGateway', 'AWS::EC2::Route', 'AWS::EC2::RouteTable',
  'AWS::EC2::SecurityGroup', 'AWS::EC2::Subnet', 'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::VPC', 'AWS::EC2::VPCGatewayAttachment',
  'AWS::ECS::Cluster', 'AWS::ECS::TaskDefinition', 'AWS::Glue::Crawler', 'AWS::Glue::Database', 'AWS::Glue::SecurityConfiguration',
  'AWS::Glue::Table', 'AWS::IAM::OIDCProvider', 'AWS::IAM::Policy', 'AWS::IAM::Role', 'AWS::KMS::Alias', 'AWS::KinesisFirehose::DeliveryStream',
  'AWS::Lambda::Function', 'AWS::Logs::LogGroup', 'AWS::Logs::LogStream', 'AWS::Logs::MetricFilter', 'AWS::S3::Bucket', 'AWS::S3::BucketPolicy',
  'AWS::SNS::Subscription', 'AWS::SNS::Topic', 'AWS::SNS::TopicPolicy', 'AWS::Scheduler::Schedule', 'AWS::StepFunctions::StateMachine',
  'Custom::VpcRestrictDefaultSG',
  // Billed as the log data it delivers (minutes of task traffic a day): inside the logs inputs.
  'AWS::EC2::FlowLog',
]);

export interface TemplateInventory {
  environment: string;
  encryption: string;
  datasets: number;
  fixed: { kmsKeys: number; dashboards: number; alarmMetrics: number; compositeAlarms: number; secrets: number };
  /** Per dataset stack (the first one: the default dataset when `datasets/` holds one file). */
  perDataset: { kmsKeys: number; alarmMetrics: number; compositeAlarms: number; secrets: number; crawlers: number; fetcherMemoryMB: number; transformVcpu: number; transformMemoryGB: number };
}

export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
}

/** CloudWatch bills a metric alarm per metric it references (a metric-math alarm: each MetricStat). */
function alarmMetrics(r: Resource): number {
  const metrics = r.Properties?.Metrics as Array<{ MetricStat?: unknown }> | undefined;
  return metrics ? metrics.filter((m) => m.MetricStat).length : 1;
}

/** A gateway endpoint (S3, DynamoDB) is free; an interface endpoint is billed by the hour and not modelled. */
const isFree = (r: Resource): boolean =>
  FREE_OR_USAGE_BILLED_TYPES.has(r.Type) || (r.Type === 'AWS::EC2::VPCEndpoint' && (r.Properties?.VpcEndpointType ?? 'Gateway') === 'Gateway');

/** The billed-by-the-month counts of a set of resources; throws on a type neither priced nor free. */
export function pricedResources(resources: Resource[]) {
  const count = (type: string) => resources.filter((r) => r.Type === type).length;
  const unpriced = [...new Set(resources.filter((r) => !(MONTHLY_PRICED_TYPES as readonly string[]).includes(r.Type) && !isFree(r)).map((r) => r.Type))];
  if (unpriced.length) throw new Error(`The templates hold resource types the cost model neither prices nor lists as free or usage-billed: ${unpriced.join(', ')} (bench/template-inventory.ts)`);
  return {
    kmsKeys: count('AWS::KMS::Key'),
    dashboards: count('AWS::CloudWatch::Dashboard'),
    alarmMetrics: resources.filter((r) => r.Type === 'AWS::CloudWatch::Alarm').reduce((n, r) => n + alarmMetrics(r), 0),
    compositeAlarms: count('AWS::CloudWatch::CompositeAlarm'),
    secrets: count('AWS::SecretsManager::Secret'),
  };
}

/** Synthesize environment `env` (no Lambda bundling, no Docker) and count what it bills. */
export function templateInventory(env: string, datasetsDir?: string): TemplateInventory {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'cost-synth-'));
  try {
    const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    const app = new App({
      outdir,
      context: {
        ...cdkJson.context,
        env,
        'aws:cdk:bundling-stacks': [],
        ...(datasetsDir ? { datasetsDir } : {}),
        // Deploy settings an environment may require: they change no billed resource (an e-mail
        // subscription is free), so placeholders stand in when none are given.
        githubRepository: process.env.GITHUB_REPOSITORY || 'example-org/socrata-athena-pipeline',
        alarmEmail: process.env.ALARM_EMAIL || 'cost-model@example.org',
      },
    });
    const built = buildPipelineApp(app);
    const assembly = app.synth();
    const template = (stack: Stack): Resource[] => Object.values((assembly.getStackByName(stack.stackName).template as { Resources: Record<string, Resource> }).Resources);
    const first = built.datasetStacks[0]!;
    const own = template(first);
    const perDataset = pricedResources(own);
    const fn = own.find((r) => r.Type === 'AWS::Lambda::Function' && String(r.Properties?.Description ?? '').startsWith('Fetches '));
    const task = own.find((r) => r.Type === 'AWS::ECS::TaskDefinition');
    if (!fn || !task) throw new Error(`${first.stackName}: no fetcher function or transform task definition to size`);
    // Secrets the pipeline reads but does not create (a dataset's app token) are billed all the same.
    const source = built.datasets[0]!.source;
    const importedSecrets = isSocrata(source) && source.appTokenSecretName ? 1 : 0;
    return {
      environment: built.config.name,
      encryption: built.config.encryption,
      datasets: built.datasets.length,
      fixed: pricedResources([...template(built.storage), ...template(built.shared), ...template(built.cicd)]),
      perDataset: {
        ...perDataset,
        secrets: perDataset.secrets + importedSecrets,
        crawlers: own.filter((r) => r.Type === 'AWS::Glue::Crawler').length,
        fetcherMemoryMB: Number(fn.Properties!.MemorySize),
        transformVcpu: Number(task.Properties!.Cpu) / 1024,
        transformMemoryGB: Number(task.Properties!.Memory) / 1024,
      },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
