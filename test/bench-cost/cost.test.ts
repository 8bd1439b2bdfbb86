import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DEFAULT_INPUTS,
  PRICE_NAMES,
  applyInventory,
  athenaBilledBytes,
  compareDesigns,
  costParts,
  inputsFromInventory,
  loadPrices,
  monthlyCost,
  packedBilledBytes,
  parseCostArgs,
  type CostInputs,
  type CostResult,
  type PriceList,
  type PriceName,
} from '../../bench/cost';
import { pricedResources, templateInventory } from '../../bench/template-inventory';

const GB = 1024 ** 3;

/** Round prices so hand arithmetic is easy: $1 per unit for everything except where set. */
function unitPrices(overrides: Partial<Record<PriceName, number>> = {}): PriceList {
  const prices = Object.fromEntries(
    PRICE_NAMES.map((n) => [n, { usd: overrides[n] ?? 1, unit: 'u', source: 'test' }]),
  ) as PriceList['prices'];
  return { region: 'us-east-1', currency: 'USD', asOf: '2025-06-01', prices };
}

const line = (r: CostResult, prefix: string) => {
  const l = r.lines.find((x) => x.item.startsWith(prefix));
  assert.ok(l, `line "${prefix}" present in ${r.design}`);
  return l;
};

const small: CostInputs = {
  ...DEFAULT_INPUTS,
  rows: 1_000,
  rowBytes: 1_000,
  metadataBytesPerRow: 24,
  changedPct: 10,
  runsPerMonth: 10,
  monthOfOperation: 1,
  packedRecordBytes: 51_200,
};

describe('cost model arithmetic', () => {
  test('packed records: full records plus a partial last one, each rounded up to 5,120 bytes', () => {
    assert.deepEqual(packedBilledBytes(10_000, 4_096), { records: 3, billedBytes: 3 * 5_120 });
    assert.deepEqual(packedBilledBytes(102_400, 51_200), { records: 2, billedBytes: 102_400 });
    assert.deepEqual(packedBilledBytes(0, 51_200), { records: 0, billedBytes: 0 });
  });

  test('Firehose billed GB: packed changed rows here, one 5 KB record per row in the earlier design', () => {
    const prices = unitPrices({ firehoseIngestionPerGB: 0.029 });
    // This design: 10% of 1,000 rows × 1,024 B = 102,400 B per run = two 51,200 B records; 10 runs.
    const ours = line(monthlyCost(small, prices, 'this'), 'Firehose ingestion');
    assert.equal(ours.quantity, 1_024_000 / GB);
    assert.ok(Math.abs(ours.usd - (1_024_000 / GB) * 0.029) < 1e-12);
    // Earlier: every row of 1,000 B is its own record billed as 5,120 B; 1,000 rows × 10 runs.
    const earlier = line(monthlyCost(small, prices, 'earlier'), 'Firehose ingestion');
    assert.equal(earlier.quantity, (1_000 * 5_120 * 10) / GB);
  });

  test('NAT gateway: 730 hours a month at the hourly price, plus processed bytes; none in this design', () => {
    const prices = unitPrices({ natGatewayPerHour: 0.045, natGatewayPerGB: 0.045 });
    const earlier = monthlyCost(small, prices, 'earlier');
    const hours = line(earlier, 'NAT gateway hours');
    assert.equal(hours.quantity, 730);
    assert.ok(Math.abs(hours.usd - 32.85) < 1e-9);
    // Download 1,000,000 B + Firehose upload as base64 (4/3) + 0.3 GB image pull, 10 runs.
    const processed = line(earlier, 'NAT gateway data processed');
    assert.ok(Math.abs(processed.quantity - ((1_000_000 + 4_000_000 / 3) * 10) / GB - 3) < 1e-9);
    assert.equal(monthlyCost(small, prices, 'this').lines.filter((l) => l.item.startsWith('NAT')).length, 0);
  });

  test('Lambda GB-s and Step Functions transitions follow the fetch time and loop count', () => {
    const prices = unitPrices();
    const inputs = { ...small, fetchRowsPerSecond: 10, lambdaBudgetSeconds: 4, lambdaOverheadSecondsPerInvocation: 1, lambdaMemoryMB: 2048 };
    const r = monthlyCost(inputs, prices, 'this');
    // 100 changed rows at 10 rows/s = 10 s → 3 invocations of ≤ 4 s, + 3 s overhead = 13 s × 2 GB × 10 runs.
    assert.equal(line(r, 'Lambda fetcher compute').quantity, 260);
    assert.equal(line(r, 'Lambda requests').quantity, 30);
    assert.equal(line(r, 'Step Functions transitions').quantity, (25 + 3 * 3) * 10);
  });

  test('Fargate vCPU and memory hours, Athena 10 MB minimum, storage averages over the month', () => {
    const prices = unitPrices();
    const r = monthlyCost({ ...small, transformTaskMinutes: 6, fargateVcpu: 2, fargateMemoryGB: 4 }, prices, 'this');
    assert.equal(line(r, 'Fargate transform vCPU').quantity, 2);
    assert.equal(line(r, 'Fargate transform memory').quantity, 4);
    assert.equal(athenaBilledBytes(1), 10 * 1024 * 1024);
    assert.equal(athenaBilledBytes(20 * 1024 * 1024), 20 * 1024 * 1024);
    // Tiny tables: every query is billed the 10 MB minimum. (1 MERGE + 5 marts + 12 tests) × 10 runs; 300 users.
    assert.equal(line(r, 'Athena scanned by runs').quantity, (18 * 10 * 10 * 1024 * 1024) / 1024 ** 4);
    assert.equal(line(r, 'Athena scanned by users').quantity, (300 * 10 * 1024 * 1024) / 1024 ** 4);
    // Earlier design in month 1: on average half the month's full reloads are stored: 1,000,000 B × 10 × 0.5.
    const e = monthlyCost(small, prices, 'earlier');
    assert.equal(line(e, 'S3 storage raw').quantity, 5_000_000 / GB);
    const e3 = monthlyCost({ ...small, monthOfOperation: 3 }, prices, 'earlier');
    assert.equal(line(e3, 'S3 storage raw').quantity, 25_000_000 / GB);
  });

  test('the total is the sum of the lines, and the earlier design warns when it cannot finish in Lambda', () => {
    const c = compareDesigns(DEFAULT_INPUTS, loadPrices());
    for (const r of [c.this, c.earlier]) {
      assert.ok(Math.abs(r.totalUsd - r.lines.reduce((s, l) => s + l.usd, 0)) < 1e-9);
      assert.ok(r.lines.every((l) => Number.isFinite(l.usd) && l.usd >= 0));
    }
    assert.ok(c.this.totalUsd < c.earlier.totalUsd);
    assert.equal(c.ratio, c.this.totalUsd / c.earlier.totalUsd);
    const slow = monthlyCost({ ...DEFAULT_INPUTS, earlierFetchRowsPerSecond: 100 }, loadPrices(), 'earlier');
    assert.match(slow.warnings.join('\n'), /over Lambda's 900 s limit/);
  });

  test('CLI flags map onto inputs and bad values are refused', () => {
    const { inputs, json } = parseCostArgs(['--rows', '5000', '--row-bytes=900', '--changed-pct', '2.5', '--runs-per-month', '4', '--set', 'gzipRatio=0.2', '--json']);
    assert.equal(json, true);
    assert.equal(inputs.rows, 5000);
    assert.equal(inputs.rowBytes, 900);
    assert.equal(inputs.changedPct, 2.5);
    assert.equal(inputs.runsPerMonth, 4);
    assert.equal(inputs.gzipRatio, 0.2);
    assert.throws(() => parseCostArgs(['--rows', 'many']), /non-negative number/);
    assert.throws(() => parseCostArgs(['--set', 'nope=1']), /Unknown cost input/);
    assert.throws(() => parseCostArgs(['--bogus']), /Unknown option/);
    assert.throws(() => parseCostArgs(['--env']), /--env needs an environment name/);
    assert.equal(parseCostArgs([]).env, 'dev');
    assert.equal(parseCostArgs(['--env', 'prod']).env, 'prod');
    assert.equal(parseCostArgs(['--no-synth']).env, undefined);
    assert.equal(parseCostArgs(['--datasets', '3']).inputs.datasets, 3);
  });

  test('three parts: fixed + datasets × per dataset = total; a dataset adds exactly its increment; per run × runs × datasets = the run lines', () => {
    const prices = loadPrices();
    const inputs = { ...DEFAULT_INPUTS, kmsKeys: 2, dashboards: 1 };
    const one = monthlyCost(inputs, prices);
    const p1 = costParts(one, inputs);
    assert.ok(Math.abs(p1.fixedUsd + p1.perDatasetUsd - one.totalUsd) < 1e-9);
    assert.ok(Math.abs(p1.fixedUsd - (2 * 1 + 3 + 0.03)) < 1e-9, `fixed: keys, dashboard, image (${p1.fixedUsd})`);
    const runLines = one.lines.filter((l) => l.part === 'run').reduce((n, l) => n + l.usd, 0);
    assert.ok(Math.abs(p1.perRunUsd * inputs.runsPerMonth - runLines) < 1e-9);
    const three = { ...inputs, datasets: 3 };
    const r3 = monthlyCost(three, prices);
    const p3 = costParts(r3, three);
    assert.ok(Math.abs(p3.perDatasetUsd - p1.perDatasetUsd) < 1e-9, 'the increment does not depend on the count');
    assert.ok(Math.abs(r3.totalUsd - one.totalUsd - 2 * p1.perDatasetUsd) < 1e-9);
    assert.ok(Math.abs(p3.fixedUsd - p1.fixedUsd) < 1e-9, 'the fixed part does not grow with datasets');
  });

  test('resource lines follow the resource inputs: no key, no dashboard, no KMS requests; alarms per metric; the crawler only on drift runs', () => {
    const prices = unitPrices();
    const bare = monthlyCost({ ...small, kmsKeys: 0, dashboards: 0, driftRunsPerMonth: 0 }, prices);
    for (const item of ['KMS', 'CloudWatch dashboard']) assert.equal(bare.lines.some((l) => l.item.startsWith(item)), false, item);
    assert.equal(line(bare, 'Glue crawler').usd, 0);
    const full = monthlyCost({ ...small, kmsKeys: 2, dashboards: 1, alarmMetricsPerDataset: 7, datasets: 2, driftRunsPerMonth: 3, crawlerDpuHoursPerRun: 0.5 }, prices);
    assert.equal(line(full, 'KMS customer managed keys').quantity, 2);
    assert.equal(line(full, 'KMS requests').quantity, small.kmsRequestsPerRun * small.runsPerMonth * 2);
    assert.equal(line(full, 'CloudWatch dashboard').quantity, 1);
    assert.equal(line(full, 'CloudWatch alarm').quantity, 14, '7 alarm metrics for each of 2 datasets');
    assert.equal(line(full, 'Glue crawler').quantity, 0.5 * 3 * 2);
    // Custom metrics: each sent in one hour per run, 10 runs, prorated over 730 hours.
    assert.ok(Math.abs(line(full, 'CloudWatch custom metrics').quantity - (16 * 10 * 2) / 730) < 1e-12);
  });
});

describe('priced from the synthesized templates', () => {
  const dev = templateInventory('dev');
  const prod = templateInventory('prod');

  test('DEFAULT_INPUTS are what dev synthesizes (so the model without synth prices dev)', () => {
    const derived = inputsFromInventory(dev);
    for (const [k, v] of Object.entries(derived)) assert.equal(DEFAULT_INPUTS[k as keyof typeof DEFAULT_INPUTS], v, k);
    assert.equal(dev.encryption, 'aws-managed');
  });

  test('dev: no customer-managed key, no dashboard, one 7-metric alarm and a crawler per dataset; prod: two keys and a dashboard', () => {
    assert.deepEqual(dev.fixed, { kmsKeys: 0, dashboards: 0, alarmMetrics: 0, compositeAlarms: 0, secrets: 0 });
    assert.equal(dev.perDataset.alarmMetrics, 7);
    assert.equal(dev.perDataset.crawlers, 1);
    assert.equal(dev.perDataset.secrets, 0, 'the default dataset reads no app token');
    assert.deepEqual(prod.fixed, { kmsKeys: 2, dashboards: 1, alarmMetrics: 0, compositeAlarms: 0, secrets: 0 });
    assert.equal(prod.perDataset.transformVcpu, 2);
  });

  test('the target: dev with the default dataset costs at most $2.00 a month; prod is priced with its keys and dashboard', () => {
    const prices = loadPrices();
    const devInputs = applyInventory(DEFAULT_INPUTS, dev);
    const devCost = monthlyCost(devInputs, prices);
    assert.ok(devCost.totalUsd <= 2, `dev costs $${devCost.totalUsd.toFixed(2)}`);
    const prodCost = monthlyCost(applyInventory(DEFAULT_INPUTS, prod), prices);
    assert.equal(line(prodCost, 'CloudWatch dashboard').usd, 3);
    assert.equal(line(prodCost, 'KMS customer managed keys').usd, 2);
    // Inputs given on the command line win over the templates.
    assert.equal(applyInventory(DEFAULT_INPUTS, prod, new Set(['dashboards'])).dashboards, DEFAULT_INPUTS.dashboards);
  });

  test('a resource billed by the month that the model does not price fails the inventory; a free gateway endpoint does not', () => {
    assert.throws(() => pricedResources([{ Type: 'AWS::EC2::NatGateway' }]), /AWS::EC2::NatGateway/);
    assert.throws(() => pricedResources([{ Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Interface' } }]), /VPCEndpoint/);
    assert.equal(pricedResources([{ Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Gateway' } }]).kmsKeys, 0);
    const counted = pricedResources([
      { Type: 'AWS::CloudWatch::Alarm', Properties: { Metrics: [{ Expression: 'MAX([a, b])' }, { MetricStat: {} }, { MetricStat: {} }] } },
      { Type: 'AWS::CloudWatch::Alarm', Properties: { MetricName: 'Errors' } },
      { Type: 'AWS::KMS::Key' },
    ]);
    assert.equal(counted.alarmMetrics, 3, 'a math alarm bills each metric it reads, a single-metric alarm one');
    assert.equal(counted.kmsKeys, 1);
  });
});

describe('bench/prices.json', () => {
  test('has a date, a region, and a positive price with a unit and source page for every item the model uses', async () => {
    const list = loadPrices();
    assert.match(list.asOf, /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(list.region, 'us-east-1');
    for (const name of PRICE_NAMES) {
      const p = list.prices[name];
      assert.ok(p.usd > 0, `${name} positive`);
      assert.ok(p.source.length > 0 && p.unit.length > 0, `${name} has unit and source`);
    }
  });

  test('loadPrices rejects a file with a missing date or a non-positive price', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'prices-'));
    try {
      const good = JSON.parse(await readFile(path.join(import.meta.dirname, '../../bench/prices.json'), 'utf8'));
      const zero = structuredClone(good);
      zero.prices.natGatewayPerHour.usd = 0;
      await writeFile(path.join(dir, 'zero.json'), JSON.stringify(zero));
      assert.throws(() => loadPrices(path.join(dir, 'zero.json')), /natGatewayPerHour/);
      const undated = structuredClone(good);
      delete undated.asOf;
      await writeFile(path.join(dir, 'undated.json'), JSON.stringify(undated));
      assert.throws(() => loadPrices(path.join(dir, 'undated.json')), /asOf/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
