import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/environment-config';

/** Glue writes the logs of a crawler with a security configuration under this prefix. */
export const CRAWLER_LOG_GROUP_PREFIX = '/aws-glue/crawlers-role/';

export interface DataLakeBucketsProps {
  /** Lifecycle periods of the environment. */
  readonly data: EnvironmentConfig['data'];
  /** RETAIN in production; DESTROY elsewhere (buckets must be emptied first). */
  readonly removalPolicy: RemovalPolicy;
  /** A customer-managed data key (SSE-KMS), or SSE-S3 with no key of ours. */
  readonly customerManagedKey: boolean;
}

/**
 * The stateful heart of the pipeline: the four buckets and, unless the environment uses AWS-managed
 * encryption, one KMS key. Every bucket blocks public access, refuses plain HTTP and sends its
 * server access logs to the access-log bucket.
 */
export class DataLakeBuckets extends Construct {
  /**
   * Encrypts the raw, curated and results buckets, the Firehose stream, Athena results and crawler
   * logs; undefined with AWS-managed encryption (SSE-S3), where nothing of ours needs key grants.
   */
  readonly key: kms.Key | undefined;
  /** Firehose output, fetcher checkpoints and quarantine (versioned). */
  readonly raw: s3.Bucket;
  /** Curated Iceberg tables, marts, run summaries and reports. */
  readonly curated: s3.Bucket;
  /** Athena query results (short-lived). */
  readonly athenaResults: s3.Bucket;
  /** S3 server access logs of the three data buckets. */
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: DataLakeBucketsProps) {
    super(scope, id);
    const { data, removalPolicy } = props;

    const key = props.customerManagedKey
      ? new kms.Key(this, 'DataKey', {
          description: 'Encrypts the Socrata pipeline data: raw, curated, Athena results, Firehose',
          enableKeyRotation: true,
          removalPolicy,
        })
      : undefined;
    this.key = key;

    // Server access log delivery does not support SSE-KMS destinations: S3-managed keys here.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(data.accessLogsExpireAfterDays), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    const common = (logPrefix: string): s3.BucketProps => ({
      ...(key ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true } : { encryption: s3.BucketEncryption.S3_MANAGED }),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: logPrefix,
      removalPolicy,
    });

    this.raw = new s3.Bucket(this, 'Raw', {
      ...common('raw/'),
      versioned: true,
      lifecycleRules: [
        {
          // Only the raw zone: checkpoints/ and quarantine/ live in this bucket too, and must
          // neither move to an infrequent-access class nor expire with the data.
          id: 'raw-to-infrequent-access',
          prefix: 'raw/',
          transitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(data.rawInfrequentAccessAfterDays) },
          ],
          ...(data.rawExpireAfterDays ? { expiration: Duration.days(data.rawExpireAfterDays) } : {}),
          noncurrentVersionExpiration: Duration.days(data.rawNoncurrentExpireAfterDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        // Every checkpoint advance and lease change writes a new version of the same small
        // object: keep the old ones long enough to inspect a run, not forever.
        // Key scans are only read by their own run (and the last one's _latest.json by the next
        // scan's cadence check): a few weeks are plenty.
        { id: 'expire-keysets', prefix: 'keysets/', expiration: Duration.days(30), noncurrentVersionExpiration: Duration.days(1) },
        ...(['checkpoints/', 'leases/'] as const).map((prefix) => ({
          id: `expire-old-${prefix.slice(0, -1)}`,
          prefix,
          noncurrentVersionExpiration: Duration.days(data.rawNoncurrentExpireAfterDays),
        })),
      ],
    });

    this.curated = new s3.Bucket(this, 'Curated', {
      ...common('curated/'),
      lifecycleRules: [{ id: 'abort-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });

    this.athenaResults = new s3.Bucket(this, 'AthenaResults', {
      ...common('athena-results/'),
      lifecycleRules: [
        { id: 'expire-results', expiration: Duration.days(data.athenaResultsExpireAfterDays), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    // The crawlers' CloudWatch Logs are encrypted with this key (their Glue security
    // configurations): CloudWatch Logs may use it for those log groups only, per the encryption
    // context it sends. Nothing else is granted to a service principal.
    const stack = Stack.of(this);
    key?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CrawlerLogsOnly',
        principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: `${CRAWLER_LOG_GROUP_PREFIX}*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
  }
}
