import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CRAWLER_LOG_GROUP_PREFIX } from './data-lake-buckets';
import { columnComment, INGESTION_METADATA, sourceLabel, pointFieldNamesOf, tableName, type DatasetConfig } from '../../runtime/dataset-config';
import { RAW_PARTITION_KEY, rawPrefix } from '../../runtime/storage-layout';

/** Where Glue writes the logs of a crawler without a security configuration (one stream per crawler). */
export const DEFAULT_CRAWLER_LOG_GROUP = '/aws-glue/crawlers';

export interface RawTableProps {
  readonly dataset: DatasetConfig;
  readonly rawBucket: s3.IBucket;
  /** Decrypts raw objects and encrypts the crawler logs; undefined: SSE-S3, default log encryption. */
  readonly key: kms.IKey | undefined;
  readonly databaseName: string;
}

/** Glue column list of the raw table: Socrata serves every scalar as a string. */
export function rawTableColumns(dataset: DatasetConfig): glue.CfnTable.ColumnProperty[] {
  const columns: glue.CfnTable.ColumnProperty[] = [];
  for (const c of dataset.columns) {
    if (c.type === 'point') {
      columns.push({ name: c.name, type: 'struct<type:string,coordinates:array<double>>', comment: columnComment(c) });
      const p = pointFieldNamesOf(c);
      columns.push({ name: p.longitude, type: 'double', comment: `longitude of ${c.name}` });
      columns.push({ name: p.latitude, type: 'double', comment: `latitude of ${c.name}` });
    } else {
      columns.push({ name: c.name, type: 'string', comment: columnComment(c) });
    }
  }
  columns.push(
    { name: INGESTION_METADATA.ingestedAt, type: 'string', comment: 'ISO-8601 UTC time the fetcher read the row' },
    { name: INGESTION_METADATA.runId, type: 'string', comment: 'Step Functions execution name of the run' },
    { name: INGESTION_METADATA.sourceUpdatedAt, type: 'string', comment: "the row's Socrata :updated_at" },
    { name: INGESTION_METADATA.sourceId, type: 'string', comment: "the row's Socrata :id" },
  );
  return columns;
}

/**
 * The raw Glue table over the Firehose prefix (partition projection on `ingest_date`, so no
 * partition is ever registered) and a crawler that merges new source columns into it.
 */
export class RawTable extends Construct {
  readonly table: glue.CfnTable;
  readonly tableName: string;
  readonly crawler: glue.CfnCrawler;
  readonly crawlerName: string;
  /** Encrypts the crawler logs with the data key; none without a customer-managed key. */
  readonly securityConfiguration: glue.CfnSecurityConfiguration | undefined;

  constructor(scope: Construct, id: string, props: RawTableProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.tableName = tableName(props.dataset);
    this.table = this.rawTable(props);
    this.crawlerName = `${stack.stackName}-${props.dataset.name}-raw`.slice(0, 255);
    const securityConfigurationName = `${stack.stackName}-${props.dataset.name}-crawler`.slice(0, 255);
    this.securityConfiguration = this.crawlerLogEncryption(securityConfigurationName, props.key);
    const role = this.crawlerRole(props, securityConfigurationName);
    this.crawler = this.mergeNewColumnsCrawler(props, role);
    this.crawler.node.addDependency(this.table, role);
  }

  /** JSON lines under the Firehose prefix, partitions projected from `ingest_date`. */
  private rawTable(props: RawTableProps): glue.CfnTable {
    const { dataset } = props;
    const location = props.rawBucket.s3UrlForObject(rawPrefix(dataset));
    return new glue.CfnTable(this, 'Table', {
      catalogId: Stack.of(this).account,
      databaseName: props.databaseName,
      tableInput: {
        name: this.tableName,
        description: `Raw ${dataset.name} rows from ${sourceLabel(dataset.source)}`,
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'json',
          compressionType: 'gzip',
          'projection.enabled': 'true',
          [`projection.${RAW_PARTITION_KEY}.type`]: 'date',
          [`projection.${RAW_PARTITION_KEY}.format`]: 'yyyy-MM-dd',
          [`projection.${RAW_PARTITION_KEY}.range`]: '2020-01-01,NOW',
          [`projection.${RAW_PARTITION_KEY}.interval`]: '1',
          [`projection.${RAW_PARTITION_KEY}.interval.unit`]: 'DAYS',
          'storage.location.template': `${location}${RAW_PARTITION_KEY}=\${${RAW_PARTITION_KEY}}/`,
        },
        partitionKeys: [{ name: RAW_PARTITION_KEY, type: 'string', comment: 'UTC day Firehose received the rows' }],
        storageDescriptor: {
          location,
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          compressed: true,
          columns: rawTableColumns(dataset),
          serdeInfo: {
            serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            // A truncated or corrupt line becomes a row of NULLs instead of failing the query.
            parameters: { 'ignore.malformed.json': 'true', 'dots.in.keys': 'false', 'case.insensitive': 'true' },
          },
        },
      },
    });
  }

  /**
   * With a data key, crawler logs are encrypted with it (its key policy lets CloudWatch Logs use
   * it); Glue writes them to /aws-glue/crawlers-role/<role name>-<security configuration name>.
   * Without one, to /aws-glue/crawlers, stream <crawler name>, under CloudWatch Logs' own encryption.
   */
  private crawlerLogEncryption(name: string, key: kms.IKey | undefined): glue.CfnSecurityConfiguration | undefined {
    return key
      ? new glue.CfnSecurityConfiguration(this, 'SecurityConfiguration', {
          name,
          encryptionConfiguration: {
            cloudWatchEncryption: { cloudWatchEncryptionMode: 'SSE-KMS', kmsKeyArn: key.keyArn },
            // The crawler writes nothing to S3 and has no job bookmarks.
            s3Encryptions: [{ s3EncryptionMode: 'DISABLED' }],
            jobBookmarksEncryption: { jobBookmarksEncryptionMode: 'DISABLED' },
          },
        })
      : undefined;
  }

  /** What AWSGlueServiceRole grants a crawler (glue:* and s3 on *), cut down to this one table and its logs. */
  private crawlerRole(props: RawTableProps, securityConfigurationName: string): iam.Role {
    const { dataset } = props;
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'CrawlerRole', {
      assumedBy: new iam.ServicePrincipal('glue.amazonaws.com'),
      description: `Glue crawler of the raw ${dataset.name} table`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'UpdateOwnRawTable',
        actions: [
          'glue:GetDatabase',
          'glue:GetTable',
          'glue:UpdateTable',
          'glue:GetPartition',
          'glue:GetPartitions',
          'glue:BatchGetPartition',
          'glue:CreatePartition',
          'glue:BatchCreatePartition',
          'glue:UpdatePartition',
          'glue:BatchUpdatePartition',
        ],
        resources: [
          Stack.of(this).formatArn({ service: 'glue', resource: 'catalog' }),
          Stack.of(this).formatArn({ service: 'glue', resource: 'database', resourceName: props.databaseName }),
          Stack.of(this).formatArn({ service: 'glue', resource: 'table', resourceName: `${props.databaseName}/${this.tableName}` }),
        ],
      }),
    );
    const logGroupArn = (name: string): string => stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    if (props.key) {
      const crawlerLogGroup = `${CRAWLER_LOG_GROUP_PREFIX}*-${securityConfigurationName}`;
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'OwnEncryptedCrawlerLogs',
          actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:AssociateKmsKey'],
          resources: [logGroupArn(crawlerLogGroup), logGroupArn(`${crawlerLogGroup}:*`)],
        }),
      );
    } else {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'OwnCrawlerLogStream',
          actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroupArn(DEFAULT_CRAWLER_LOG_GROUP), logGroupArn(`${DEFAULT_CRAWLER_LOG_GROUP}:log-stream:${this.crawlerName}`)],
        }),
      );
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRawPrefix',
        actions: ['s3:GetObject'],
        resources: [props.rawBucket.arnForObjects(`${rawPrefix(dataset)}*`)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListRawPrefix',
        actions: ['s3:ListBucket'],
        resources: [props.rawBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${rawPrefix(dataset)}*`] } },
      }),
    );
    if (props.key) role.addToPolicy(new iam.PolicyStatement({ sid: 'DecryptRaw', actions: ['kms:Decrypt'], resources: [props.key.keyArn] }));
    return role;
  }

  private mergeNewColumnsCrawler(props: RawTableProps, role: iam.Role): glue.CfnCrawler {
    const { dataset } = props;
    return new glue.CfnCrawler(this, 'Crawler', {
      name: this.crawlerName,
      description: `Merges new columns of ${dataset.name} into the raw table; never removes or retypes columns`,
      role: role.roleArn,
      ...(this.securityConfiguration ? { crawlerSecurityConfiguration: this.securityConfiguration.ref } : {}),
      targets: { catalogTargets: [{ databaseName: props.databaseName, tables: [this.tableName] }] },
      schemaChangePolicy: { updateBehavior: 'UPDATE_IN_DATABASE', deleteBehavior: 'LOG' },
      configuration: JSON.stringify({
        Version: 1.0,
        CrawlerOutput: {
          Partitions: { AddOrUpdateBehavior: 'InheritFromTable' },
          Tables: { AddOrUpdateBehavior: 'MergeNewColumns' },
        },
        Grouping: { TableGroupingPolicy: 'CombineCompatibleSchemas' },
      }),
    });
  }

  /** ARN of the crawler, for state machine permissions. */
  get crawlerArn(): string {
    return Stack.of(this).formatArn({ service: 'glue', resource: 'crawler', resourceName: this.crawlerName });
  }
}
