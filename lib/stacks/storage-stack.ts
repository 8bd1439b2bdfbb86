import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/environment-config';
import { DataLakeBuckets } from '../constructs/data-lake-buckets';
import { QueryCatalog } from '../constructs/query-catalog';

export interface StorageStackProps extends StackProps {
  readonly config: EnvironmentConfig;
}

/**
 * Stateful resources: the key, the buckets, the Glue databases and the Athena workgroup. Kept
 * apart from the pipeline so the stateless side can be destroyed and redeployed freely.
 */
export class StorageStack extends Stack {
  readonly buckets: DataLakeBuckets;
  readonly catalog: QueryCatalog;

  constructor(scope: Construct, id: string, props: StorageStackProps) {
    super(scope, id, props);
    const removalPolicy = props.config.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    this.buckets = new DataLakeBuckets(this, 'Buckets', { data: props.config.data, removalPolicy, customerManagedKey: props.config.encryption === 'customer-managed' });
    this.catalog = new QueryCatalog(this, 'Catalog', {
      namePrefix: `socrata_${props.config.name}`,
      resultsBucket: this.buckets.athenaResults,
      key: this.buckets.key,
      bytesScannedCutoffPerQuery: props.config.athena.bytesScannedCutoffPerQuery,
      removalPolicy,
    });
  }
}
