/**
 * Every cdk-nag (AwsSolutions) finding this app acknowledges, each with its reason, in one place.
 *
 * Wildcard findings (AwsSolutions-IAM5) name the exact resource, and for resources in the storage
 * stack that name contains the cross-stack reference CloudFormation resolves at deploy time. So
 * wildcard acknowledgements are declared here as patterns with a reason, and resolved to the exact
 * finding ids at synthesis, after references are resolved, with cdk-nag's own rule. A wildcard
 * that no pattern below explains stays a finding and fails synthesis.
 */
import { CfnResource, Validations } from 'aws-cdk-lib';
import { rules } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { curatedPrefix, DIRECT_OBJECT_PREFIX, fetchRunsPrefix, keysetPrefix, LARGE_ROW_OBJECT_PREFIX, quarantinePrefix, RAW_PARTITION_KEY, rawPrefix, transformStatePrefix } from '../runtime/storage-layout';
import type { S3Location } from '../runtime/s3-location';
import type { DatasetPipeline } from './constructs/dataset-pipeline';
import type { CicdStack } from './stacks/cicd-stack';
import type { DatasetStack } from './stacks/dataset-stack';
import type { StorageStack } from './stacks/storage-stack';

export interface AcknowledgedStacks {
  readonly storage: StorageStack;
  readonly datasets: readonly DatasetStack[];
  readonly cicd: CicdStack;
}

interface WildcardReason {
  /** Matches the finding, e.g. `Action::s3:GetObject*` or `Resource::<...>/raw/x/*`. */
  readonly finding: RegExp;
  readonly reason: string;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A resource finding ending in this literal suffix (the bucket part is a deploy-time reference). */
const resourceEndingWith = (suffix: string): RegExp => new RegExp(`^Resource::.*${escape(suffix)}$`);
/** How cdk-nag renders a reference: `<Id.Attr>` in its own stack, `<Stack>:ExportsOutputRef<Id>` imported. */
const REF = String.raw`(?:<[^>]+>|\}|[\w-]+:ExportsOutput(?:Ref|FnGetAtt)[A-Za-z0-9]+)`;
const action = (name: string): RegExp => new RegExp(`^Action::${escape(name)}$`);

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** Acknowledge, under `scope`, exactly the IAM5 findings the patterns explain. */
function acknowledgeWildcards(scope: IConstruct, reasons: WildcardReason[]): void {
  scope.node.addValidation({
    validate: () => {
      for (const node of scope.node.findAll()) {
        if (!CfnResource.isCfnResource(node)) continue;
        if (!['AWS::IAM::Policy', 'AWS::IAM::Role', 'AWS::IAM::ManagedPolicy'].includes(node.cfnResourceType)) continue;
        const findings = rules.iam.IAMNoWildcardPermissions(node);
        if (!Array.isArray(findings)) continue;
        for (const finding of findings) {
          const match = reasons.find((r) => r.finding.test(finding));
          if (match) acknowledge(node, `AwsSolutions-IAM5[${finding}]`, match.reason);
        }
      }
      return [];
    },
  });
}

const XRAY = 'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) do not support resource-level permissions';
const XRAY_AND_LOG_DELIVERY =
  'X-Ray PutTraceSegments/PutTelemetryRecords and the CloudWatch Logs delivery APIs (CreateLogDelivery, ...) do not support resource-level permissions';

/** An S3 source's objects: GetObject under the declared prefix, whose object names the publisher chooses. */
function sourceObjectsReason({ bucket, prefix }: S3Location): WildcardReason {
  return {
    finding: new RegExp(`^Resource::arn:<AWS::Partition>:s3:::${escape(`${bucket}/${prefix}*`)}$`),
    reason: `The dataset's declared S3 source (GetObject only): its objects are named by whoever lands them under s3://${bucket}/${prefix}; nothing else of the bucket`,
  };
}

function acknowledgeDataset(p: DatasetPipeline): void {
  const name = p.rawTable.tableName.replace(/_/g, '-');
  const ds = { name };

  const NODE_22 = 'Pinned to Node.js 22, the runtime the bundle targets and is tested on; upgraded deliberately, not by the latest-runtime flag';
  acknowledge(p.fetcher.function, 'AwsSolutions-L1', NODE_22);
  acknowledge(p.runLease.function, 'AwsSolutions-L1', NODE_22);
  acknowledgeWildcards(p.fetcher, [
    { finding: /^Resource::\*$/, reason: XRAY },
    { finding: resourceEndingWith(`/${quarantinePrefix(ds)}*`), reason: 'Quarantine files are named per run and sequence under this dataset’s own quarantine prefix; nothing else in the bucket' },
    { finding: resourceEndingWith(`/${keysetPrefix(ds)}*`), reason: 'Key-scan lists, markers and missing-key files are named per run under this dataset’s own keysets prefix' },
    {
      finding: resourceEndingWith(`/${rawPrefix(ds)}${RAW_PARTITION_KEY}=*/${LARGE_ROW_OBJECT_PREFIX}*`),
      reason: 'Rows too large for a Firehose record (PutObject only), one object each, named per run and row, under any ingest_date partition of this dataset’s raw prefix; Firehose’s own objects are not matched',
    },
    {
      finding: resourceEndingWith(`/${rawPrefix(ds)}${RAW_PARTITION_KEY}=*/${DIRECT_OBJECT_PREFIX}*`),
      reason: 'A parallel backfill’s rows (PutObject only), objects named per run and content hash, under any ingest_date partition of this dataset’s raw prefix; Firehose’s own objects are not matched',
    },
    { finding: resourceEndingWith(`/${fetchRunsPrefix(ds)}*`), reason: 'Per-invocation fetch figures (PutObject only), named per run, phase and invocation under this dataset’s own runs prefix' },
    { finding: /^Resource::arn:<AWS::Partition>:secretsmanager:.*-\?\?\?\?\?\?$/, reason: 'Secrets Manager appends six random characters to a secret ARN; the grant names exactly one secret' },
    ...(p.fetcher.sourcePrefix ? [sourceObjectsReason(p.fetcher.sourcePrefix)] : []),
  ]);
  acknowledgeWildcards(p.runLease, [{ finding: /^Resource::\*$/, reason: XRAY }]);

  acknowledgeWildcards(p.delivery, [
    { finding: resourceEndingWith(`/${rawPrefix(ds)}*`), reason: 'Firehose names its objects by arrival date and a random suffix under this dataset’s raw prefix' },
    { finding: resourceEndingWith(`/errors/${name}/*`), reason: 'Firehose writes records it could not deliver under this dataset’s errors prefix, by error type and date' },
  ]);

  if (!p.rawTable.securityConfiguration) {
    acknowledge(
      p.rawTable.crawler,
      'AwsSolutions-GL1',
      'AWS-managed encryption (an environment without a customer-managed key, lib/config): the crawler logs go to /aws-glue/crawlers under CloudWatch Logs’ default encryption at rest; they hold table and column names, no rows',
    );
  }
  acknowledgeWildcards(p.rawTable, [
    { finding: resourceEndingWith(`/${rawPrefix(ds)}*`), reason: 'The crawler reads every object under this dataset’s raw prefix (date partitions)' },
    { finding: /^Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:\/aws-glue\/crawlers-role\/\*-.*$/, reason: 'Glue names the crawler log group /aws-glue/crawlers-role/<role name>-<security configuration>; the role name is generated, the security configuration is this crawler’s own' },
  ]);

  acknowledge(p.transform.taskDefinition, 'AwsSolutions-ECS2', 'Environment holds only non-secret configuration (dataset definition, bucket, database and workgroup names); the task receives no secret at all');
  const table = p.rawTable.tableName;
  acknowledgeWildcards(p.transform.taskDefinition, [
    { finding: /^Resource::\*$/, reason: 'ecr:GetAuthorizationToken (execution role) does not support resource-level permissions' },
    { finding: resourceEndingWith(`/${rawPrefix(ds)}*`), reason: 'The transform reads every raw object of this dataset (date partitions)' },
    { finding: resourceEndingWith(`/${keysetPrefix(ds)}*`), reason: 'The run’s key scan (read, also by Athena as the keyset table) and its missing-keys file (written), named per run under this dataset’s keysets prefix' },
    { finding: resourceEndingWith(`/${quarantinePrefix(ds)}*`), reason: 'The fetcher’s quarantine files of this dataset (GetObject only), named per run and sequence: the reconciliation reports the keys of rows it quarantined' },
    { finding: resourceEndingWith(`/${fetchRunsPrefix(ds)}*`), reason: 'The fetcher’s figures of each run (GetObject only, for the run report), named per run, phase and invocation under this dataset’s runs prefix' },
    { finding: new RegExp(`^Resource::.*${REF}/${escape(`${table}__*`)}$`), reason: 'This dataset’s marts (<table>__<mart>) and the tables they are built in before the swap; names come from the models' },
    { finding: new RegExp(`^Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/.*${REF}/\\*$`), reason: 'glue:GetTables only (information_schema lookup of the curated database); Glue authorizes GetTables on the database’s table/* resource' },
    ...[curatedPrefix(ds), `curated/_runs/${name}/`, transformStatePrefix(ds), `reports/${name}/`].map((prefix) => ({
      finding: resourceEndingWith(`/${prefix}*`),
      reason: 'Objects of this dataset only (Iceberg data and metadata, run summaries, bookkeeping, reports), named per query and per run',
    })),
    { finding: resourceEndingWith('/athena/*'), reason: 'Athena writes each query’s results under the workgroup output location, named by query id' },
  ]);

  acknowledgeWildcards(p.run.stateMachine, [
    { finding: /^Resource::\*$/, reason: XRAY_AND_LOG_DELIVERY },
    { finding: /^Resource::<.*(Fetcher|RunLease).*\.Arn>:\*$/, reason: 'LambdaInvoke grants invoking any version/alias of this one function (the fetcher, the run lease)' },
    { finding: new RegExp(`^Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/(?:<[^>]*Cluster[^>]*>|[\\w-]+:ExportsOutputRefNetworkCluster[A-Za-z0-9]+)/\\*$`), reason: 'ecs:DescribeTasks/StopTask of the transform task .sync waits on: task ids are generated, the cluster is this pipeline’s' },
    { finding: action('kms:GenerateDataKey*'), reason: 'Publishing to the KMS-encrypted topic (grantPublish) needs GenerateDataKey* on the topic key only' },
  ]);
}

export function acknowledgeFindings({ datasets, cicd }: AcknowledgedStacks): void {
  for (const stack of datasets) acknowledgeDataset(stack.pipeline);

  // CloudFormation's own template validation: the Firehose L2 always adds a region → CIDR mapping
  // (used by Redshift/Splunk/HTTP destinations to allow-list Firehose); unused with S3.
  for (const stack of datasets) acknowledge(stack, 'CloudFormation-Validate::W7001', 'Unused Firehose CIDR mapping the Firehose L2 base class adds (here through DeliveryStream.fromDeliveryStreamAttributes, used for grants and metrics); only Redshift/Splunk/HTTP destinations use it');

  for (const role of Object.values(cicd.diffRoles)) {
    acknowledgeWildcards(role, [
      {
        finding: new RegExp(`^Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-${escape(cicd.bootstrapQualifier)}-lookup-role-\\*$`),
        reason: 'The diff role may only assume the CDK bootstrap lookup role (read-only) of this account; its name ends in the account and region',
      },
    ]);
  }
  for (const role of Object.values(cicd.deployRoles)) {
    acknowledgeWildcards(role, [
      {
        finding: new RegExp(`^Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-${escape(cicd.bootstrapQualifier)}-\\*$`),
        reason:
          'The deploy role may only assume the CDK bootstrap roles (deploy, file/image publishing, lookup) of this account; their names differ only by role kind and region suffix',
      },
    ]);
  }
}
