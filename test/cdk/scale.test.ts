/* eslint-disable @typescript-eslint/no-explicit-any -- walks synthesized CloudFormation JSON */
/**
 * Fifty datasets deploy: the app with 50 generated dataset files is synthesized ONCE (as
 * `cdk synth` does, bundling skipped) and every template is checked against CloudFormation's
 * per-stack quotas and the account-level quotas the pipeline touches. Then one dataset is changed
 * and the app synthesized again: every other stack's template must be byte-for-byte the same, so
 * deploying that change touches that dataset's stack only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT, synth } from './app-fixture';

const DATASETS = 50;

/**
 * CloudFormation per-stack quotas (CloudFormation user guide, "Understand CloudFormation quotas";
 * the values the issue cites, the stricter where the guide has since raised one).
 */
export const STACK_QUOTAS = { resources: 500, outputs: 200, parameters: 60, templateBytes: 1_000_000, descriptionBytes: 1024 } as const;
/**
 * Account-level (per account and region) default quotas the pipeline's resources count against.
 * Defaults can be raised on request; a deployment must fit the defaults, with room for the
 * account's other workloads (half of each here). These are the defaults as the services' quota
 * pages state them at the time of writing; Service Quotas shows an account's own values.
 */
export const ACCOUNT_QUOTAS = {
  /** CloudFormation stacks per account and region (default 2,000). */
  stacks: 2000,
  /** CloudFormation exports per account and region (5,000). */
  exports: 5000,
  /** IAM roles per account (default 1,000): every role of every environment deployed there. */
  iamRoles: 1000,
  /** VPCs per region (default 5). */
  vpcs: 5,
  /** Widgets on one CloudWatch dashboard (500). */
  dashboardWidgets: 500,
} as const;

function generateDatasets(dir: string, change?: { index: number; patch: (d: any) => any }): void {
  const base = JSON.parse(readFileSync(path.join(REPO_ROOT, 'datasets', 'sf-fire-incidents.json'), 'utf8'));
  for (let i = 1; i <= DATASETS; i++) {
    // Names of every length up to the 42-character maximum, so bounded physical names are exercised.
    const name = `ds-${String(i).padStart(2, '0')}-${'x'.repeat((i * 7) % 37)}`.replace(/-$/, '');
    const dataset = { ...base, name };
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(change?.index === i ? change.patch(dataset) : dataset));
  }
}

function templatesOf(outdir: string): Map<string, { text: string; json: any }> {
  const out = new Map<string, { text: string; json: any }>();
  for (const f of readdirSync(outdir).filter((x) => x.endsWith('.template.json'))) {
    const text = readFileSync(path.join(outdir, f), 'utf8');
    out.set(f.replace(/\.template\.json$/, ''), { text, json: JSON.parse(text) });
  }
  return out;
}

/** Every place an intrinsic function `name` occurs, as JSON paths. */
function occurrences(value: unknown, name: string, at = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => occurrences(v, name, `${at}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === name ? [at] : []), ...occurrences(v, name, `${at}.${k}`)]);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'datasets-50-'));
generateDatasets(dir);
const started = process.hrtime.bigint();
// prod: the environment with the most resources (customer-managed keys, the dashboard).
const ENV = 'prod';
const app = synth({ env: ENV, datasetsDir: dir });
const synthSeconds = Number(process.hrtime.bigint() - started) / 1e9;
const templates = templatesOf(app.outdir);
const datasetStacks = [...templates.keys()].filter((n) => n.startsWith(`SocrataPipeline-${ENV}-Dataset-`));

describe(`${DATASETS} datasets in one environment`, () => {
  test(`a stack per dataset, plus storage, shared and CI/CD (synthesized in ${synthSeconds.toFixed(1)} s)`, () => {
    assert.equal(datasetStacks.length, DATASETS);
    assert.deepEqual([...templates.keys()].filter((n) => !datasetStacks.includes(n)).sort(), ['SocrataPipeline-CiCd', `SocrataPipeline-${ENV}-Shared`, `SocrataPipeline-${ENV}-Storage`]);
  });

  test('every template within CloudFormation’s per-stack quotas', () => {
    const over: string[] = [];
    for (const [name, { text, json }] of templates) {
      const counts = {
        resources: Object.keys(json.Resources ?? {}).length,
        outputs: Object.keys(json.Outputs ?? {}).length,
        parameters: Object.keys(json.Parameters ?? {}).length,
        templateBytes: Buffer.byteLength(text),
        descriptionBytes: Buffer.byteLength(json.Description ?? ''),
      };
      for (const [k, limit] of Object.entries(STACK_QUOTAS)) if (counts[k as keyof typeof counts] > limit) over.push(`${name}: ${k} ${counts[k as keyof typeof counts]} > ${limit}`);
    }
    assert.deepEqual(over, []);
  });

  test('no Fn::GetStackOutput anywhere (not supported inside other intrinsics in every region); Fn::ImportValue only where documented', () => {
    for (const [name, { json }] of templates) assert.deepEqual(occurrences(json, 'Fn::GetStackOutput'), [], name);
    // Fn::ImportValue appears as a value or inside Fn::Join / Fn::Sub / Fn::Select / Fn::Split,
    // all of which document it as a supported argument.
    const imports = datasetStacks.flatMap((n) => occurrences(templates.get(n)!.json, 'Fn::ImportValue'));
    assert.ok(imports.length > 0, 'dataset stacks import the storage and shared stacks');
  });

  test('account-level quotas: stacks, exports, IAM roles, VPCs, dashboard widgets', () => {
    const all = [...templates.values()].map((t) => t.json);
    const count = (type: string) => all.reduce((n, t) => n + Object.values(t.Resources).filter((r: any) => r.Type === type).length, 0);
    const exports = all.reduce((n, t) => n + Object.values(t.Outputs ?? {}).filter((o: any) => o.Export).length, 0);
    const widgets = JSON.stringify(templates.get(`SocrataPipeline-${ENV}-Shared`)!.json).split('\\"type\\":').length - 1;
    const usage = { stacks: templates.size, exports, iamRoles: count('AWS::IAM::Role'), vpcs: count('AWS::EC2::VPC'), dashboardWidgets: widgets };
    // Two environments (dev and prod) may share an account: each must fit in half the quota.
    for (const [k, limit] of Object.entries(ACCOUNT_QUOTAS)) {
      const used = usage[k as keyof typeof usage];
      assert.ok(used <= limit / 2, `${k}: ${used} of ${limit}`);
    }
    assert.ok(widgets >= 4 * DATASETS, `a dashboard row per dataset (${widgets} widgets)`);
  });

  test('CloudWatch Logs resource policy: every state machine logs to a /aws/vendedlogs/states/ group', () => {
    let machines = 0;
    for (const n of datasetStacks) {
      const resources = templates.get(n)!.json.Resources;
      for (const r of Object.values(resources) as any[]) {
        if (r.Type !== 'AWS::StepFunctions::StateMachine') continue;
        machines++;
        const [groupId] = r.Properties.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'];
        assert.match(resources[groupId].Properties.LogGroupName, new RegExp(`^/aws/vendedlogs/states/socrata-${ENV}-ds-\\d\\d`), n);
      }
    }
    assert.equal(machines, DATASETS);
  });

  test('fixed physical names are distinct and within their services’ limits', () => {
    const names = (type: string, prop: string) => datasetStacks.flatMap((n) => Object.values(templates.get(n)!.json.Resources).filter((r: any) => r.Type === type && r.Properties[prop]).map((r: any) => r.Properties[prop] as string));
    for (const [type, prop, max] of [
      ['AWS::Lambda::Function', 'FunctionName', 64],
      ['AWS::KinesisFirehose::DeliveryStream', 'DeliveryStreamName', 64],
      ['AWS::StepFunctions::StateMachine', 'StateMachineName', 80],
    ] as const) {
      const list = names(type, prop);
      assert.equal(list.length, DATASETS, type);
      assert.equal(new Set(list).size, DATASETS, `${type} names are distinct`);
      for (const n of list) assert.ok(n.length <= max, `${n} (${n.length}) > ${max}`);
    }
  });
});

describe('changing one dataset touches its stack only', () => {
  test('after a change to one file, every other template is byte-for-byte the same', () => {
    const changedDir = mkdtempSync(path.join(os.tmpdir(), 'datasets-50-changed-'));
    generateDatasets(changedDir, { index: 7, patch: (d) => ({ ...d, schedule: { ...d.schedule, expression: 'rate(2 hours)' }, columns: [...d.columns, { name: 'new_column', type: 'text' }] }) });
    const changed = templatesOf(synth({ env: ENV, datasetsDir: changedDir }).outdir);
    assert.deepEqual([...changed.keys()].sort(), [...templates.keys()].sort());
    const differing = [...templates.keys()].filter((n) => changed.get(n)!.text !== templates.get(n)!.text);
    assert.deepEqual(differing, [`SocrataPipeline-${ENV}-Dataset-ds-07-xxxxxxxxxxxx`]);
  });
});
