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
import { quarantinePrefix, rawPrefix } from '../runtime/storage-layout';
import type { DatasetPipeline } from './constructs/dataset-pipeline';
import type { CicdStack } from './stacks/cicd-stack';
import type { PipelineStack } from './stacks/pipeline-stack';
import type { StorageStack } from './stacks/storage-stack';

export interface AcknowledgedStacks {
  readonly storage: StorageStack;
  readonly pipeline: PipelineStack;
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

/** Any object ARN of a bucket from the storage stack (`<bucket arn>/*`). */
const WHOLE_BUCKET_OBJECTS = /^Resource::\{"Fn::GetStackOutput".*\}\/\*$/;

function acknowledgeDataset(p: DatasetPipeline): void {
  const name = p.rawTable.tableName.replace(/_/g, '-');
  const ds = { name };

  const NODE_22 = 'Pinned to Node.js 22, the runtime the bundle targets and is tested on; upgraded deliberately, not by the latest-runtime flag';
  acknowledge(p.fetcher.function, 'AwsSolutions-L1', NODE_22);
  acknowledge(p.runLease.function, 'AwsSolutions-L1', NODE_22);
  acknowledgeWildcards(p.fetcher, [
    { finding: /^Resource::\*$/, reason: XRAY },
    { finding: resourceEndingWith(`/${quarantinePrefix(ds)}*`), reason: 'Quarantine files are named per run and sequence under this dataset’s own quarantine prefix; nothing else in the bucket' },
    { finding: /^Resource::arn:<AWS::Partition>:secretsmanager:.*-\?\?\?\?\?\?$/, reason: 'Secrets Manager appends six random characters to a secret ARN; the grant names exactly one secret' },
  ]);
  acknowledgeWildcards(p.runLease, [{ finding: /^Resource::\*$/, reason: XRAY }]);

  acknowledgeWildcards(p.delivery.deliveryStream, [
    { finding: WHOLE_BUCKET_OBJECTS, reason: 'Firehose writes objects under raw/ and errors/ with date-based keys; grant made by the DeliveryStream L2 on the raw bucket' },
    ...['s3:Abort*', 's3:DeleteObject*', 's3:GetBucket*', 's3:GetObject*', 's3:List*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'].map((a) => ({
      finding: action(a),
      reason: 'Action set granted by the DeliveryStream L2 for S3 delivery (multipart uploads) and SSE-KMS, scoped to the raw bucket and the data key',
    })),
  ]);

  acknowledge(p.rawTable.crawler, 'AwsSolutions-GL1', 'The crawler only reads the catalog table definition and object schemas; its logs hold table and column names, no data');
  acknowledge(p.rawTable, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSGlueServiceRole]', 'AWS-managed Glue service role policy required by crawlers (catalog updates, own logs); data access is granted separately and per prefix');
  acknowledgeWildcards(p.rawTable, [
    { finding: resourceEndingWith(`/${rawPrefix(ds)}*`), reason: 'The crawler reads every object under this dataset’s raw prefix (date partitions)' },
  ]);

  acknowledge(p.transform.taskDefinition, 'AwsSolutions-ECS2', 'Environment holds only non-secret configuration (dataset definition, bucket, database and workgroup names); the app token is an ECS secret');
  acknowledgeWildcards(p.transform.taskDefinition, [
    { finding: /^Resource::\*$/, reason: 'ecr:GetAuthorizationToken (execution role) does not support resource-level permissions' },
    { finding: resourceEndingWith(`/${rawPrefix(ds)}*`), reason: 'The transform reads every raw object of this dataset (date partitions)' },
    { finding: /^Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table\/.*\/\*$/, reason: 'The transform reads raw tables and creates/replaces curated Iceberg tables and marts whose names come from the models' },
    { finding: WHOLE_BUCKET_OBJECTS, reason: 'Curated bucket (Iceberg data/metadata files, run summaries, reports) and Athena results bucket: object keys are generated per query and per run' },
    { finding: /^Resource::\*$/, reason: XRAY_AND_LOG_DELIVERY },
  ]);

  acknowledgeWildcards(p.run.stateMachine, [
    { finding: /^Resource::\*$/, reason: XRAY_AND_LOG_DELIVERY },
    { finding: /^Resource::<.*(Fetcher|RunLease).*\.Arn>:\*$/, reason: 'LambdaInvoke grants invoking any version/alias of this one function (the fetcher, the run lease)' },
    { finding: action('kms:GenerateDataKey*'), reason: 'Publishing to the KMS-encrypted topic (grantPublish) needs GenerateDataKey* on the topic key only' },
  ]);
}

export function acknowledgeFindings({ pipeline, cicd }: AcknowledgedStacks): void {
  for (const p of pipeline.pipelines) acknowledgeDataset(p);

  // CloudFormation's own template validation: the Firehose L2 always adds a region → CIDR mapping
  // (used by Redshift/Splunk/HTTP destinations to allow-list Firehose); unused with S3.
  acknowledge(pipeline, 'CloudFormation-Validate::W7001', 'Unused Firehose CIDR mapping added by the DeliveryStream L2; harmless');

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
