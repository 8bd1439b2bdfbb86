import { RemovalPolicy } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ATHENA_RESULTS_PREFIX } from './transform-task';

export interface QueryCatalogProps {
  /** Prefix of the database and workgroup names, e.g. `socrata_dev`. */
  readonly namePrefix: string;
  readonly resultsBucket: s3.IBucket;
  /** Encrypts Athena results (SSE-KMS); undefined: SSE-S3. */
  readonly key: kms.IKey | undefined;
  /** Athena's per-query bytes-scanned cutoff. */
  readonly bytesScannedCutoffPerQuery: number;
  readonly removalPolicy: RemovalPolicy;
}

/** Glue databases for raw and curated tables, and the Athena workgroup every query runs in. */
export class QueryCatalog extends Construct {
  readonly rawDatabase: glue.Database;
  readonly curatedDatabase: glue.Database;
  readonly workgroup: athena.CfnWorkGroup;
  readonly workgroupName: string;

  constructor(scope: Construct, id: string, props: QueryCatalogProps) {
    super(scope, id);
    const prefix = props.namePrefix.replace(/-/g, '_');
    this.rawDatabase = new glue.Database(this, 'RawDatabase', {
      databaseName: `${prefix}_raw`,
      description: 'Raw Socrata rows as delivered by Firehose (JSON, every scalar a string)',
    });
    this.curatedDatabase = new glue.Database(this, 'CuratedDatabase', {
      databaseName: `${prefix}_curated`,
      description: 'Curated, deduplicated Iceberg tables and marts built by the transform task',
    });
    this.rawDatabase.applyRemovalPolicy(props.removalPolicy);
    this.curatedDatabase.applyRemovalPolicy(props.removalPolicy);

    this.workgroupName = props.namePrefix.replace(/_/g, '-');
    this.workgroup = new athena.CfnWorkGroup(this, 'Workgroup', {
      name: this.workgroupName,
      description: 'Socrata pipeline queries: engine v3, enforced encrypted results, scan cutoff',
      state: 'ENABLED',
      recursiveDeleteOption: props.removalPolicy === RemovalPolicy.DESTROY,
      workGroupConfiguration: {
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery,
        resultConfiguration: {
          outputLocation: props.resultsBucket.s3UrlForObject(ATHENA_RESULTS_PREFIX),
          encryptionConfiguration: props.key ? { encryptionOption: 'SSE_KMS', kmsKey: props.key.keyArn } : { encryptionOption: 'SSE_S3' },
        },
      },
    });
    this.workgroup.applyRemovalPolicy(props.removalPolicy);
  }
}
