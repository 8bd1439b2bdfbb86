/* eslint-disable @typescript-eslint/no-explicit-any -- assertions navigate synthesized CloudFormation JSON ad hoc */
/**
 * Adding a dataset is adding a JSON file: a second definition yields a second pipeline, and a
 * malformed one fails synthesis naming the file and the field. Also proves the cdk-nag plugin is
 * live: an unacknowledged finding fails synthesis.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Template } from 'aws-cdk-lib/assertions';
import { buildPipelineApp } from '../../lib/pipeline-app';
import { columns, datasetInput } from '../support/dataset-builder';
import { newApp, REPO_ROOT, synth } from './app-fixture';

const SF_FIRE = path.join(REPO_ROOT, 'datasets', 'sf-fire-incidents.json');

function datasetsDir(extra: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'datasets-'));
  copyFileSync(SF_FIRE, path.join(dir, 'sf-fire-incidents.json'));
  for (const [file, body] of Object.entries(extra)) writeFileSync(path.join(dir, file), typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  return dir;
}

const secondDataset = datasetInput({
  name: 'chicago-crimes',
  source: { domain: 'data.cityofchicago.org', datasetId: 'ijzp-q8t2', appTokenSecretName: 'socrata/chicago-app-token' },
  eventTimeColumn: 'date',
  columns: columns({ id: 'text', date: 'floating_timestamp', primary_type: 'text', location: 'point' }),
  schedule: { expression: 'rate(6 hours)' },
  delivery: { bufferingIntervalSeconds: 300, bufferingSizeMiB: 128 },
});

describe('dataset definitions drive the pipelines', () => {
  test('a second JSON file adds a second, independent pipeline', () => {
    // prod: the environment with a dashboard, whose rows are checked below.
    const result = synth({ env: 'prod', datasetsDir: datasetsDir({ 'chicago-crimes.json': secondDataset }) });
    // A stack per dataset, each with its own stream, fetcher, table, crawler, task, run, schedule, alarm.
    assert.deepEqual(result.datasetStacks.map((st) => st.stackName), ['SocrataPipeline-prod-Dataset-chicago-crimes', 'SocrataPipeline-prod-Dataset-sf-fire-incidents']);
    for (const stack of result.datasetStacks) {
      const each = Template.fromStack(stack);
      for (const type of ['AWS::KinesisFirehose::DeliveryStream', 'AWS::StepFunctions::StateMachine', 'AWS::Glue::Table', 'AWS::Glue::Crawler', 'AWS::ECS::TaskDefinition', 'AWS::Scheduler::Schedule']) each.resourceCountIs(type, 1);
      each.resourceCountIs('AWS::CloudWatch::Alarm', 1);
      each.resourceCountIs('AWS::Lambda::Function', 2); // fetcher and run lease
      for (const type of ['AWS::ECS::Cluster', 'AWS::SNS::Topic', 'AWS::CloudWatch::Dashboard', 'AWS::EC2::VPC']) each.resourceCountIs(type, 0);
    }
    // Shared: one network, one cluster, one topic, one dashboard with a row per dataset.
    const shared = result.templates.shared;
    shared.resourceCountIs('AWS::ECS::Cluster', 1);
    shared.resourceCountIs('AWS::SNS::Topic', 1);
    shared.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = JSON.stringify(shared.toJSON());
    for (const name of ['chicago-crimes', 'sf-fire-incidents']) assert.ok(body.includes(`## ${name}`), `dashboard row for ${name}`);
    const t = Template.fromStack(result.datasetStacks[0]!);

    const json = t.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
    const streams = Object.values(json.Resources).filter((r) => r.Type === 'AWS::KinesisFirehose::DeliveryStream');
    const chicago = streams.find((s) => s.Properties.ExtendedS3DestinationConfiguration.Prefix.startsWith('raw/chicago-crimes/'))!;
    assert.deepEqual(chicago.Properties.ExtendedS3DestinationConfiguration.BufferingHints, { IntervalInSeconds: 300, SizeInMBs: 128 });
    const chicagoTable = Object.values(json.Resources).find((r) => r.Type === 'AWS::Glue::Table' && r.Properties.TableInput.Name === 'chicago_crimes')!;
    const cols = chicagoTable.Properties.TableInput.StorageDescriptor.Columns.map((c: { Name: string }) => c.Name);
    assert.deepEqual(cols.slice(0, 6), ['id', 'date', 'primary_type', 'location', 'location_longitude', 'location_latitude']);

    const schedule = Object.values(json.Resources).find((r) => r.Type === 'AWS::Scheduler::Schedule' && r.Properties.ScheduleExpression === 'rate(6 hours)')!;
    assert.equal(schedule.Properties.ScheduleExpressionTimezone, 'UTC');

    // The app token: the secret's name for the fetcher, never a value; the transform gets nothing.
    const fns = Object.values(json.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'fetcher-chicago-crimes');
    assert.equal(fns.length, 1);
    assert.equal(fns[0]!.Properties.Environment.Variables.APP_TOKEN_SECRET_NAME, 'socrata/chicago-app-token');
    assert.equal(fns[0]!.Properties.Environment.Variables.POINT_COLUMNS, 'location');
    const task = Object.values(json.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition' && JSON.stringify(r.Properties.ContainerDefinitions[0].Environment).includes('chicago-crimes'))!;
    const container = task.Properties.ContainerDefinitions[0];
    assert.equal(container.Secrets, undefined, 'the transform never reads the app token');
    // (Its name is in DATASET_CONFIG, like the rest of the definition; neither task role may read it.)
    const taskRolePolicies = Object.entries(json.Resources).filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && /Transform/.test(id));
    assert.ok(taskRolePolicies.length >= 2);
    for (const [, p] of taskRolePolicies) assert.doesNotMatch(JSON.stringify(p.Properties.PolicyDocument), /secretsmanager/);

    // The fetcher may read only its own secret.
    const policies = Object.values(json.Resources).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.PolicyDocument).includes('secretsmanager:GetSecretValue'));
    const secretResources = policies.flatMap((p) => p.Properties.PolicyDocument.Statement.filter((s: { Action: unknown }) => JSON.stringify(s.Action).includes('secretsmanager:GetSecretValue')).map((s: { Resource: unknown }) => JSON.stringify(s.Resource)));
    assert.ok(secretResources.length >= 1);
    for (const r of secretResources) assert.match(r, /secret:socrata\/chicago-app-token-\?\?\?\?\?\?/);
  });

  test('a malformed definition fails synthesis naming the file and the field', () => {
    const bad = { ...secondDataset, source: { ...secondDataset.source, datasetId: 'not-a-4x4-id' }, primaryKey: 'missing_column' };
    const dir = datasetsDir({ 'chicago-crimes.json': bad });
    assert.throws(
      () => buildPipelineApp(newApp({ datasetsDir: dir })),
      (err: Error) =>
        err.message.includes(path.join(dir, 'chicago-crimes.json')) &&
        /source\.datasetId: must be a Socrata 4x4 id/.test(err.message) &&
        /primaryKey: "missing_column" is not one of the declared columns/.test(err.message),
    );
  });

  test('invalid JSON and a name that does not match the file are reported with the file', () => {
    const dir = datasetsDir({ 'broken.json': '{ "name": ' });
    assert.throws(() => buildPipelineApp(newApp({ datasetsDir: dir })), new RegExp(`${path.join(dir, 'broken.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON`));
    const dir2 = datasetsDir({ 'other-name.json': readFileSync(SF_FIRE, 'utf8') });
    assert.throws(() => buildPipelineApp(newApp({ datasetsDir: dir2 })), /name: "sf-fire-incidents" must match the file name "other-name"/);
  });

  test('an unacknowledged cdk-nag finding fails synthesis', () => {
    const app = newApp({ env: 'dev' });
    const built = buildPipelineApp(app);
    new s3.Bucket(built.storage, 'UnencryptedScratch', {});
    assert.throws(() => app.synth(), /AwsSolutions-S10|AwsSolutions-S1\b|Validation failed/);
  });
});

describe('raw table columns of a point column', () => {
  test('named by the column’s `coordinates` when it sets them, else the defaults', async () => {
    const { rawTableColumns } = await import('../../lib/constructs/raw-table');
    const { loadDatasetFile } = await import('../../runtime/dataset-config');
    const base = loadDatasetFile(path.join(REPO_ROOT, 'datasets', 'sf-fire-incidents.json'));
    const names = (d: typeof base) => rawTableColumns(d).map((c) => c.name);
    assert.ok(names(base).includes('longitude') && names(base).includes('latitude'));
    const renamed = {
      ...base,
      columns: base.columns.map((c) => (c.type === 'point' ? { ...c, coordinates: { longitude: 'point_lon', latitude: 'point_lat' } } : c)),
    };
    const cols = rawTableColumns(renamed);
    assert.deepEqual(cols.filter((c) => c.type === 'double').map((c) => c.name), ['point_lon', 'point_lat']);
    assert.equal(names(renamed).includes('longitude'), false);
  });
});
