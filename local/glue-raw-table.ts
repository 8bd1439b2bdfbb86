/**
 * The raw zone's Glue table as the CDK synthesizes it, registered in the local Trino's file
 * metastore: columns, SerDe and its parameters, location and the partition-projection parameters
 * are copied from the `AWS::Glue::Table` of the template, so Trino executes the CDK's table
 * definition (a hand-written copy could drift from it). Locations move from `s3://<raw bucket>/`
 * to the local raw directory; nothing else is changed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { RawTable } from '../lib/constructs/raw-table';
import { tableName, type DatasetConfig } from '../runtime/dataset-config';
import { localLocation, TRINO_VERSION } from './trino-server';

/** The parts of a CloudFormation `AWS::Glue::Table` TableInput the metastore needs. */
export interface GlueTableInput {
  Name: string;
  TableType?: string;
  Parameters?: Record<string, string>;
  PartitionKeys?: { Name: string; Type: string; Comment?: string }[];
  StorageDescriptor: {
    Location: string;
    InputFormat?: string;
    OutputFormat?: string;
    Columns: { Name: string; Type: string; Comment?: string }[];
    SerdeInfo?: { SerializationLibrary?: string; Parameters?: Record<string, string> };
  };
}

/** The bucket name the raw table is synthesized against locally (its locations are then mapped). */
export const LOCAL_RAW_BUCKET = 'local-raw-bucket';

/**
 * Synthesize the RawTable construct (the one the Pipeline stack uses) for a dataset and return its
 * TableInput. The bucket and key are imported by name, so the template holds plain strings.
 */
export function synthesizeRawTable(dataset: DatasetConfig, databaseName: string): GlueTableInput {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'LocalRawTable', { env: { account: '000000000000', region: 'us-east-1' } });
  const rawBucket = s3.Bucket.fromBucketName(stack, 'RawBucket', LOCAL_RAW_BUCKET);
  const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000');
  new RawTable(stack, 'Raw', { dataset, rawBucket, key, databaseName });
  const template = app.synth().getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: { TableInput: GlueTableInput } }> };
  const tables = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Glue::Table');
  const table = tables.find((t) => t.Properties.TableInput.Name === tableName(dataset));
  if (!table) throw new Error(`the RawTable construct synthesized no AWS::Glue::Table named ${tableName(dataset)}`);
  return table.Properties.TableInput;
}

/** Hive's `TableInput` → the file metastore's table file, as Trino TRINO_VERSION reads it. */
export function metastoreTable(input: GlueTableInput, mapLocation: (s3Url: string) => string): Record<string, unknown> {
  const sd = input.StorageDescriptor;
  const column = (c: { Name: string; Type: string; Comment?: string }): Record<string, unknown> => ({
    name: c.Name,
    type: c.Type,
    ...(c.Comment ? { comment: c.Comment } : {}),
    properties: {},
  });
  const parameters = { ...(input.Parameters ?? {}) };
  // The one parameter that names a place: the projection's location template.
  if (parameters['storage.location.template']) parameters['storage.location.template'] = mapLocation(parameters['storage.location.template']);
  return {
    // The file metastore refuses a table file written by another Trino version.
    writerVersion: TRINO_VERSION,
    owner: 'glue',
    tableType: input.TableType ?? 'EXTERNAL_TABLE',
    dataColumns: sd.Columns.map(column),
    partitionColumns: (input.PartitionKeys ?? []).map(column),
    parameters: { EXTERNAL: 'TRUE', ...parameters },
    originalStorageFormat: {
      serde: sd.SerdeInfo?.SerializationLibrary,
      inputFormat: sd.InputFormat,
      outputFormat: sd.OutputFormat,
    },
    serdeParameters: sd.SerdeInfo?.Parameters ?? {},
    externalLocation: mapLocation(sd.Location),
    columnStatistics: {},
  };
}

/**
 * Register a Glue table in the metastore (replacing an earlier registration, as a deploy updates
 * the Glue table). The database must exist (CREATE SCHEMA, as the Glue database does on AWS).
 */
export async function registerGlueTable(metastoreDir: string, database: string, input: GlueTableInput, mapLocation: (s3Url: string) => string): Promise<void> {
  const dir = path.join(metastoreDir, database, input.Name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, '.trinoSchema'), `${JSON.stringify(metastoreTable(input, mapLocation), null, 2)}\n`);
}

/** `s3://<bucket>/...` of the locally synthesized table → `local://<rawDir>/...`. */
export function rawLocationMapper(rawDir: string, bucket = LOCAL_RAW_BUCKET): (s3Url: string) => string {
  const prefix = `s3://${bucket}/`;
  return (url) => {
    if (!url.startsWith(prefix)) throw new Error(`raw table location ${url} is not in s3://${bucket}/`);
    return `${localLocation(rawDir)}/${url.slice(prefix.length)}`;
  };
}
