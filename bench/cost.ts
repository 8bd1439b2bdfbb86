/**
 * Monthly AWS cost model: this design vs the earlier one, from list prices kept in
 * bench/prices.json. `monthlyCost` is pure arithmetic so the benchmark can feed it measured
 * inputs (records per call, compression ratio, Parquet/JSON ratio, durations) and tests can check
 * it by hand. Run: `npm run cost -- [--rows N] [--row-bytes S] [--changed-pct C]
 * [--runs-per-month N] [--month M] [--set name=value ...] [--json]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { billedRecordBytes } from '../local/firehose-billing';
import { errorCategory, exitCodeFor } from '../runtime/pipeline-error';
// Type only: the inventory loads aws-cdk-lib, so `main` imports it when it synthesizes, and
// `npm run bench` (which prices its measurements with this module) never does.
import type { TemplateInventory } from './template-inventory';

export interface PriceEntry {
  usd: number;
  unit: string;
  source: string;
}

export const PRICE_NAMES = [
  'firehoseIngestionPerGB',
  'lambdaPerGBSecond',
  'lambdaPerMillionRequests',
  'stepFunctionsPerThousandTransitions',
  'fargatePerVcpuHour',
  'fargatePerGBHour',
  'athenaPerTBScanned',
  's3StandardPerGBMonth',
  's3PutPerThousand',
  's3GetPerThousand',
  'kmsKeyPerMonth',
  'kmsPerTenThousandRequests',
  'cloudwatchLogsIngestionPerGB',
  'cloudwatchLogsStoragePerGBMonth',
  'cloudwatchAlarmPerMonth',
  'cloudwatchDashboardPerMonth',
  'cloudwatchCompositeAlarmPerMonth',
  'cloudwatchCustomMetricPerMonth',
  'natGatewayPerHour',
  'natGatewayPerGB',
  'publicIpv4PerHour',
  'glueCrawlerPerDpuHour',
  'secretsManagerPerSecretMonth',
  'ecrStoragePerGBMonth',
] as const;
export type PriceName = (typeof PRICE_NAMES)[number];

export interface PriceList {
  region: string;
  currency: string;
  /** ISO date the prices were read from the source pages. */
  asOf: string;
  note?: string;
  prices: Record<PriceName, PriceEntry>;
}

/** Read and check bench/prices.json (or another file of the same shape). */
export function loadPrices(file = path.join(import.meta.dirname, 'prices.json')): PriceList {
  const list = JSON.parse(readFileSync(file, 'utf8')) as PriceList;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(list.asOf ?? '')) throw new Error(`${file}: asOf must be a YYYY-MM-DD date`);
  for (const name of PRICE_NAMES) {
    const p = list.prices?.[name];
    if (!p || !(typeof p.usd === 'number' && p.usd > 0) || !p.unit || !p.source) {
      throw new Error(`${file}: price "${name}" needs a positive usd, a unit and a source page`);
    }
  }
  return list;
}

/** Everything the model needs; defaults below, each documented in docs/cost.md. */
export interface CostInputs {
  /** R: rows in the dataset. */
  rows: number;
  /** S: bytes per row as JSON, as the source serves it. */
  rowBytes: number;
  /** C: percent of rows that change between two refreshes. */
  changedPct: number;
  runsPerMonth: number;
  /** Which month of operation to price: history (raw data, logs) accumulates in both designs. */
  monthOfOperation: number;

  // ---- this design (measured by `npm run bench` where possible) ----
  /** Bytes each raw row gains from ingestion metadata and coordinates. */
  metadataBytesPerRow: number;
  /** Target size of a packed Firehose record (≤ 1,000 KiB). */
  packedRecordBytes: number;
  /** Compressed / uncompressed size of the raw NDJSON (gzip). */
  gzipRatio: number;
  /** Curated Parquet bytes / raw JSON bytes. */
  parquetToJsonRatio: number;
  /** Rows per second the fetcher sustains against the source (source-bound on the internet). */
  fetchRowsPerSecond: number;
  lambdaMemoryMB: number;
  /** Per-invocation overhead: start-up, checkpoint read/write, final flush. */
  lambdaOverheadSecondsPerInvocation: number;
  /** Time budget per invocation before the state machine loops. */
  lambdaBudgetSeconds: number;
  /** State transitions per run outside the fetch loop (crawl polling, transform, report). */
  stepFunctionsFixedTransitionsPerRun: number;
  /** Transitions per fetch loop iteration (invoke, choice, pass). */
  stepFunctionsTransitionsPerFetchLoop: number;
  fargateVcpu: number;
  fargateMemoryGB: number;
  /** Billed task minutes per transform run (image pull to stop; Fargate bills a 1-minute minimum). */
  transformTaskMinutes: number;
  /** Data-test queries per run (on curated Parquet). */
  dataTestQueriesPerRun: number;
  /** Fraction of the curated table a data-test or ad-hoc query reads (column + partition pruning). */
  curatedQueryScanFraction: number;
  /** Parquet objects the transform writes per run. */
  curatedFilesWrittenPerRun: number;
  /** S3 GETs an Athena query makes on curated Parquet (files × row groups read). */
  curatedGetsPerQuery: number;
  /** KMS requests per run through S3 Bucket Keys and Firehose; none without a customer-managed key. */
  kmsRequestsPerRun: number;
  /** Custom metrics the fetcher and run lease publish per run (Powertools), each billed for the hours it is sent in. */
  customMetricsPerRun: number;

  // ---- from the synthesized templates (bench/template-inventory.ts; `npm run cost` derives them) ----
  /** Datasets in the environment, each priced like the one described by rows/rowBytes/changedPct. */
  datasets: number;
  /** Customer-managed KMS keys of the environment (0 with AWS-managed encryption). */
  kmsKeys: number;
  dashboards: number;
  /** Metrics the environment's own alarms reference (CloudWatch bills an alarm per metric). */
  alarmMetricsFixed: number;
  alarmMetricsPerDataset: number;
  compositeAlarmsFixed: number;
  compositeAlarmsPerDataset: number;
  secretsFixed: number;
  /** Secrets a dataset reads (its app token, created by hand, billed all the same). */
  secretsPerDataset: number;
  /** Runs a month whose fetch reported undeclared columns: only those start the crawler. */
  driftRunsPerMonth: number;

  // ---- both designs ----
  /** Mart-building queries per run. */
  martQueriesPerRun: number;
  /** Ad-hoc / dashboard queries per month against the published tables. */
  userQueriesPerMonth: number;
  logBytesPerRun: number;
  crawlerDpuHoursPerRun: number;
  containerImageGB: number;

  // ---- the earlier design ----
  /** Rows per second of the earlier fetcher (sequential, one record per row): `npm run bench` measures it. */
  earlierFetchRowsPerSecond: number;
  earlierLambdaMemoryMB: number;
  /** Its transform waited on Athena queries over all raw JSON. */
  earlierTransformTaskMinutes: number;
  /** Its delivery stream used the default 5 MiB buffer, so it wrote many small objects. */
  earlierFirehoseBufferMiB: number;
}

export const DEFAULT_INPUTS: CostInputs = {
  rows: 700_000,
  rowBytes: 1_600,
  changedPct: 1,
  runsPerMonth: 30,
  monthOfOperation: 12,

  metadataBytesPerRow: 180,
  packedRecordBytes: 1_000 * 1024,
  gzipRatio: 0.12,
  parquetToJsonRatio: 0.1,
  fetchRowsPerSecond: 2_000,
  lambdaMemoryMB: 512,
  lambdaOverheadSecondsPerInvocation: 2,
  lambdaBudgetSeconds: 600,
  stepFunctionsFixedTransitionsPerRun: 25,
  stepFunctionsTransitionsPerFetchLoop: 3,
  fargateVcpu: 1,
  fargateMemoryGB: 4,
  transformTaskMinutes: 4,
  dataTestQueriesPerRun: 12,
  curatedQueryScanFraction: 0.05,
  curatedFilesWrittenPerRun: 40,
  curatedGetsPerQuery: 50,
  kmsRequestsPerRun: 300,
  customMetricsPerRun: 16,

  // dev's templates (test/bench-cost/cost.test.ts holds them to a fresh synth)
  datasets: 1,
  kmsKeys: 0,
  dashboards: 0,
  alarmMetricsFixed: 0,
  alarmMetricsPerDataset: 7,
  compositeAlarmsFixed: 0,
  compositeAlarmsPerDataset: 0,
  secretsFixed: 0,
  secretsPerDataset: 0,
  driftRunsPerMonth: 1,

  martQueriesPerRun: 5,
  userQueriesPerMonth: 300,
  logBytesPerRun: 5 * 1024 * 1024,
  crawlerDpuHoursPerRun: 1 / 6,
  containerImageGB: 0.3,

  earlierFetchRowsPerSecond: 1_000,
  earlierLambdaMemoryMB: 1_024,
  earlierTransformTaskMinutes: 10,
  earlierFirehoseBufferMiB: 5,
};

/**
 * Which part of the bill a line belongs to: `fixed` per environment whatever its datasets,
 * `dataset` per dataset and month whatever its runs, `run` per dataset run. Dataset and run lines
 * are totals over every dataset and run of the month.
 */
export type CostPart = 'fixed' | 'dataset' | 'run';

export interface CostLine {
  item: string;
  quantity: number;
  unit: string;
  usd: number;
  part: CostPart;
}

export interface CostResult {
  design: 'this' | 'earlier';
  lines: CostLine[];
  totalUsd: number;
  /** Where the inputs describe something the design could not actually do. */
  warnings: string[];
}

/** Lambda's hard limit on one invocation. */
const LAMBDA_MAX_SECONDS = 900;

export type Design = CostResult['design'];

const GB = 1024 ** 3;
const TB = 1024 ** 4;
const HOURS_PER_MONTH = 730;
const ATHENA_MIN_BYTES = 10 * 1024 * 1024;

/** Billed bytes for a run's payload sent as packed records of `recordBytes` (the last one partial). */
export function packedBilledBytes(payloadBytes: number, recordBytes: number): { records: number; billedBytes: number } {
  if (payloadBytes <= 0) return { records: 0, billedBytes: 0 };
  const full = Math.floor(payloadBytes / recordBytes);
  const rest = payloadBytes - full * recordBytes;
  return {
    records: full + (rest > 0 ? 1 : 0),
    billedBytes: full * billedRecordBytes(recordBytes) + (rest > 0 ? billedRecordBytes(rest) : 0),
  };
}

/** Bytes Athena bills for one query that reads `bytes` (10 MB minimum per query). */
export const athenaBilledBytes = (bytes: number): number => Math.max(ATHENA_MIN_BYTES, bytes);

/**
 * The monthly cost of one design. Pure: same inputs and prices, same answer. Quantities are per
 * month; storage is the average stored during month `monthOfOperation`.
 */
export function monthlyCost(inputs: CostInputs, priceList: PriceList, design: Design = 'this'): CostResult {
  const lines: CostLine[] = [];
  const warnings: string[] = [];
  const N = inputs.runsPerMonth;
  const m = inputs.monthOfOperation;
  const bill: Bill = {
    i: inputs,
    p: (name) => priceList.prices[name].usd,
    add: (item, quantity, unit, usd, part = 'run') => {
      lines.push({ item, quantity, unit, usd, part });
    },
    warnings,
    N,
    m,
    // Average count of runs whose data is stored during month m (the month's runs count half).
    runsStored: N * (m - 0.5),
  };
  if (design === 'this') thisDesignCost(bill);
  else earlierDesignCost(bill);
  const totalUsd = lines.reduce((sum, l) => sum + l.usd, 0);
  return { design, lines, totalUsd, warnings };
}

/** What every part of a bill is computed from, and where it adds its lines (in the order printed). */
interface Bill {
  readonly i: CostInputs;
  readonly p: (name: PriceName) => number;
  readonly add: (item: string, quantity: number, unit: string, usd: number, part?: CostPart) => void;
  readonly warnings: string[];
  /** Runs per month (of each dataset). */
  readonly N: number;
  /** The month of operation whose storage is averaged. */
  readonly m: number;
  readonly runsStored: number;
}

/** The figures of one run of this design that several parts of its bill use. */
interface ThisDesignRun {
  /** Datasets. */
  readonly D: number;
  /** Runs per month, all datasets. */
  readonly runs: number;
  readonly rawRowBytes: number;
  /** Bytes of changed rows one run sends to Firehose. */
  readonly payload: number;
  /** Firehose records one run sends (rows packed into records). */
  readonly records: number;
}

/** This design: incremental fetch, packed Firehose records, Parquet curated, no NAT. */
function thisDesignCost(bill: Bill): void {
  const { i, p, add, N } = bill;
  const D = i.datasets;
  const runs = N * D;
  const rawRowBytes = i.rowBytes + i.metadataBytesPerRow;
  const changedRows = Math.ceil((i.rows * i.changedPct) / 100);
  const payload = changedRows * rawRowBytes;
  const { records, billedBytes } = packedBilledBytes(payload, i.packedRecordBytes);
  add('Firehose ingestion (packed records)', (billedBytes * runs) / GB, 'GB billed', ((billedBytes * runs) / GB) * p('firehoseIngestionPerGB'));
  const run: ThisDesignRun = { D, runs, rawRowBytes, payload, records };
  thisDesignCompute(bill, run, changedRows);
  thisDesignQueriesAndStorage(bill, run);
  thisDesignOperations(bill, run);
}

/** The fetcher's Lambda, the state machine and the transform task. */
function thisDesignCompute(bill: Bill, run: ThisDesignRun, changedRows: number): void {
  const { i, p, add, warnings } = bill;
  const { runs } = run;
  const fetchSeconds = changedRows / i.fetchRowsPerSecond;
  if (i.lambdaBudgetSeconds + i.lambdaOverheadSecondsPerInvocation > LAMBDA_MAX_SECONDS) {
    warnings.push(`lambdaBudgetSeconds ${i.lambdaBudgetSeconds} plus overhead exceeds Lambda's ${LAMBDA_MAX_SECONDS} s limit`);
  }
  const invocations = Math.max(1, Math.ceil(fetchSeconds / i.lambdaBudgetSeconds));
  const lambdaSeconds = fetchSeconds + invocations * i.lambdaOverheadSecondsPerInvocation;
  const gbSeconds = lambdaSeconds * (i.lambdaMemoryMB / 1024) * runs;
  add('Lambda fetcher compute', gbSeconds, 'GB-s', gbSeconds * p('lambdaPerGBSecond'));
  add('Lambda requests', invocations * runs, 'requests', ((invocations * runs) / 1e6) * p('lambdaPerMillionRequests'));

  const transitions = (i.stepFunctionsFixedTransitionsPerRun + invocations * i.stepFunctionsTransitionsPerFetchLoop) * runs;
  add('Step Functions transitions', transitions, 'transitions', (transitions / 1000) * p('stepFunctionsPerThousandTransitions'));

  const taskHours = (i.transformTaskMinutes / 60) * runs;
  add('Fargate transform vCPU', taskHours * i.fargateVcpu, 'vCPU-hours', taskHours * i.fargateVcpu * p('fargatePerVcpuHour'));
  add('Fargate transform memory', taskHours * i.fargateMemoryGB, 'GB-hours', taskHours * i.fargateMemoryGB * p('fargatePerGBHour'));
  // No NAT: the task runs in a public subnet and holds a public IPv4 address only while it runs.
  add('Public IPv4 for the task (no NAT)', taskHours, 'address-hours', taskHours * p('publicIpv4PerHour'));
}

/** Athena scans and S3 storage and requests. */
function thisDesignQueriesAndStorage(bill: Bill, run: ThisDesignRun): void {
  const { i, p, add, runsStored } = bill;
  const { D, runs, rawRowBytes, payload, records } = run;
  const curatedBytes = i.rows * rawRowBytes * i.parquetToJsonRatio;
  const newRawGz = payload * i.gzipRatio;
  // MERGE reads the new raw partition and the curated table; marts and tests read pruned columns.
  const perRunScan =
    athenaBilledBytes(newRawGz + curatedBytes) +
    i.martQueriesPerRun * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction) +
    i.dataTestQueriesPerRun * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction);
  const runScan = perRunScan * runs;
  add('Athena scanned by runs (Parquet: MERGE, marts, tests)', runScan / TB, 'TB', (runScan / TB) * p('athenaPerTBScanned'));
  const userScan = i.userQueriesPerMonth * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction) * D;
  add('Athena scanned by users', userScan / TB, 'TB', (userScan / TB) * p('athenaPerTBScanned'), 'dataset');

  const rawStored = (i.rows * rawRowBytes + payload * runsStored) * i.gzipRatio * D;
  add('S3 storage raw (gzip NDJSON)', rawStored / GB, 'GB-month', (rawStored / GB) * p('s3StandardPerGBMonth'), 'dataset');
  add('S3 storage curated (Parquet)', (curatedBytes * D) / GB, 'GB-month', ((curatedBytes * D) / GB) * p('s3StandardPerGBMonth'), 'dataset');
  const firehoseObjects = Math.max(1, records > 0 ? Math.ceil(payload / (64 * 1024 * 1024)) : 0);
  const puts = (firehoseObjects + i.curatedFilesWrittenPerRun + 5) * runs;
  add('S3 PUT/LIST requests', puts, 'requests', (puts / 1000) * p('s3PutPerThousand'));
  const runGets = (1 + i.martQueriesPerRun + i.dataTestQueriesPerRun) * runs * i.curatedGetsPerQuery;
  add('S3 GET requests by runs', runGets, 'requests', (runGets / 1000) * p('s3GetPerThousand'));
  const userGets = i.userQueriesPerMonth * D * i.curatedGetsPerQuery;
  add('S3 GET requests by users', userGets, 'requests', (userGets / 1000) * p('s3GetPerThousand'), 'dataset');
}

/** Keys, secrets, the crawler, the image, logs, metrics, alarms and the dashboard. */
function thisDesignOperations(bill: Bill, run: ThisDesignRun): void {
  const { i, p, add, N, m } = bill;
  const { D, runs } = run;
  if (i.kmsKeys > 0) {
    add('KMS customer managed keys', i.kmsKeys, 'key-months', i.kmsKeys * p('kmsKeyPerMonth'), 'fixed');
    add('KMS requests (S3 Bucket Keys on)', i.kmsRequestsPerRun * runs, 'requests', ((i.kmsRequestsPerRun * runs) / 10_000) * p('kmsPerTenThousandRequests'));
  }
  if (i.secretsFixed > 0) add('Secrets Manager', i.secretsFixed, 'secret-months', i.secretsFixed * p('secretsManagerPerSecretMonth'), 'fixed');
  if (i.secretsPerDataset > 0) add('Secrets Manager (app tokens)', i.secretsPerDataset * D, 'secret-months', i.secretsPerDataset * D * p('secretsManagerPerSecretMonth'), 'dataset');
  // The crawler runs only on a run whose fetch saw undeclared columns (10-minute minimum each).
  const crawlDpuHours = i.crawlerDpuHoursPerRun * i.driftRunsPerMonth * D;
  add('Glue crawler (drift runs only)', crawlDpuHours, 'DPU-hours', crawlDpuHours * p('glueCrawlerPerDpuHour'), 'dataset');
  add('ECR image storage', i.containerImageGB, 'GB-month', i.containerImageGB * p('ecrStoragePerGBMonth'), 'fixed');
  const logGB = (i.logBytesPerRun * runs) / GB;
  add('CloudWatch Logs ingestion', logGB, 'GB', logGB * p('cloudwatchLogsIngestionPerGB'));
  const storedLogGB = logGB * (m - 0.5);
  add('CloudWatch Logs storage', storedLogGB, 'GB-month', storedLogGB * p('cloudwatchLogsStoragePerGBMonth'), 'dataset');
  // A custom metric costs its monthly price prorated by the hours it receives data in: one hour a run.
  const metricMonths = (i.customMetricsPerRun * Math.min(HOURS_PER_MONTH, N) * D) / HOURS_PER_MONTH;
  add('CloudWatch custom metrics (pipeline figures)', metricMonths, 'metric-months', metricMonths * p('cloudwatchCustomMetricPerMonth'));
  const alarmMetrics = i.alarmMetricsFixed + i.alarmMetricsPerDataset * D;
  if (i.alarmMetricsFixed > 0) add('CloudWatch alarms (environment)', i.alarmMetricsFixed, 'alarm-metric-months', i.alarmMetricsFixed * p('cloudwatchAlarmPerMonth'), 'fixed');
  if (i.alarmMetricsPerDataset > 0) add('CloudWatch alarm (one metric-math alarm per dataset)', alarmMetrics - i.alarmMetricsFixed, 'alarm-metric-months', (alarmMetrics - i.alarmMetricsFixed) * p('cloudwatchAlarmPerMonth'), 'dataset');
  if (i.compositeAlarmsFixed > 0) add('CloudWatch composite alarms (environment)', i.compositeAlarmsFixed, 'alarm-months', i.compositeAlarmsFixed * p('cloudwatchCompositeAlarmPerMonth'), 'fixed');
  if (i.compositeAlarmsPerDataset > 0) add('CloudWatch composite alarms', i.compositeAlarmsPerDataset * D, 'alarm-months', i.compositeAlarmsPerDataset * D * p('cloudwatchCompositeAlarmPerMonth'), 'dataset');
  if (i.dashboards > 0) add('CloudWatch dashboard', i.dashboards, 'dashboard-months', i.dashboards * p('cloudwatchDashboardPerMonth'), 'fixed');
}

/** The earlier design (the baseline): a full reload every run, one record per row, a NAT, raw JSON queried. */
function earlierDesignCost(bill: Bill): void {
  const { i, p, add, warnings, N } = bill;
  // Full reload every run, one record per row, no metadata added.
  const perRunRecords = i.rows;
  const payload = i.rows * i.rowBytes;
  const billed = perRunRecords * billedRecordBytes(i.rowBytes);
  add('Firehose ingestion (one record per row)', (billed * N) / GB, 'GB billed', ((billed * N) / GB) * p('firehoseIngestionPerGB'));

  const fetchSeconds = i.rows / i.earlierFetchRowsPerSecond;
  if (fetchSeconds > LAMBDA_MAX_SECONDS) {
    // It had no cursor to resume from: such a run times out and loads a partial dataset.
    warnings.push(`the earlier fetcher needs ${Math.round(fetchSeconds)} s per run, over Lambda's ${LAMBDA_MAX_SECONDS} s limit: it could not finish`);
  }
  const gbSeconds = fetchSeconds * (i.earlierLambdaMemoryMB / 1024) * N;
  add('Lambda fetcher compute (full reload)', gbSeconds, 'GB-s', gbSeconds * p('lambdaPerGBSecond'));
  add('Lambda requests', N, 'requests', (N / 1e6) * p('lambdaPerMillionRequests'));

  const taskHours = (i.earlierTransformTaskMinutes / 60) * N;
  add('Fargate transform vCPU', taskHours * i.fargateVcpu, 'vCPU-hours', taskHours * i.fargateVcpu * p('fargatePerVcpuHour'));
  add('Fargate transform memory', taskHours * i.fargateMemoryGB, 'GB-hours', taskHours * i.fargateMemoryGB * p('fargatePerGBHour'));

  add('NAT gateway hours', HOURS_PER_MONTH, 'hours', HOURS_PER_MONTH * p('natGatewayPerHour'), 'fixed');
  // Through the NAT: the source download, the Firehose upload (base64 in JSON, 4/3) and the image pull.
  const natBytes = (payload + (payload * 4) / 3 + i.containerImageGB * GB) * N;
  add('NAT gateway data processed', natBytes / GB, 'GB', (natBytes / GB) * p('natGatewayPerGB'));
  earlierDesignQueriesAndStorage(bill, payload);
}

/** Every query reads all raw JSON ever delivered; the crawler runs every run. */
function earlierDesignQueriesAndStorage(bill: Bill, payload: number): void {
  const { i, p, add, N, m, runsStored } = bill;
  const rawStored = payload * runsStored;
  // Every query reads every raw JSON object ever delivered (no partitions, no compression, no dedup).
  const scannedPerQuery = athenaBilledBytes(rawStored);
  const queries = i.martQueriesPerRun * N + i.userQueriesPerMonth;
  const scanned = scannedPerQuery * queries;
  add('Athena scanned (raw JSON, all history)', scanned / TB, 'TB', (scanned / TB) * p('athenaPerTBScanned'), 'dataset');

  add('S3 storage raw (uncompressed JSON)', rawStored / GB, 'GB-month', (rawStored / GB) * p('s3StandardPerGBMonth'), 'dataset');
  const objectsPerRun = Math.ceil(payload / (i.earlierFirehoseBufferMiB * 1024 * 1024));
  const puts = (objectsPerRun + i.martQueriesPerRun) * N;
  add('S3 PUT/LIST requests', puts, 'requests', (puts / 1000) * p('s3PutPerThousand'));
  const gets = objectsPerRun * runsStored * queries;
  add('S3 GET requests', gets, 'requests', (gets / 1000) * p('s3GetPerThousand'), 'dataset');
  // It crawled on every run.
  const dpuHours = i.crawlerDpuHoursPerRun * N;
  add('Glue crawler (every run)', dpuHours, 'DPU-hours', dpuHours * p('glueCrawlerPerDpuHour'));
  add('ECR image storage', i.containerImageGB, 'GB-month', i.containerImageGB * p('ecrStoragePerGBMonth'), 'fixed');
  const logGB = (i.logBytesPerRun * N) / GB;
  add('CloudWatch Logs ingestion', logGB, 'GB', logGB * p('cloudwatchLogsIngestionPerGB'));
  const storedLogGB = logGB * (m - 0.5);
  add('CloudWatch Logs storage', storedLogGB, 'GB-month', storedLogGB * p('cloudwatchLogsStoragePerGBMonth'), 'dataset');
}

/**
 * This design's bill in the three parts `npm run cost` prints: the environment's fixed part, the
 * monthly increment of each dataset (its own lines and its runs), and one run of one dataset.
 */
export interface CostParts {
  fixedUsd: number;
  perDatasetUsd: number;
  perRunUsd: number;
  datasets: number;
  runsPerMonth: number;
  totalUsd: number;
}

export function costParts(result: CostResult, inputs: CostInputs): CostParts {
  const sum = (part: CostPart) => result.lines.filter((l) => l.part === part).reduce((n, l) => n + l.usd, 0);
  const D = inputs.datasets;
  const runUsd = sum('run');
  return {
    fixedUsd: sum('fixed'),
    perDatasetUsd: D > 0 ? (sum('dataset') + runUsd) / D : 0,
    perRunUsd: D > 0 ? runUsd / (D * inputs.runsPerMonth) : 0,
    datasets: D,
    runsPerMonth: inputs.runsPerMonth,
    totalUsd: result.totalUsd,
  };
}

export interface CostComparison {
  inputs: CostInputs;
  prices: { region: string; asOf: string };
  this: CostResult;
  earlier: CostResult;
  /** this ÷ earlier. */
  ratio: number;
}

export function compareDesigns(inputs: CostInputs, priceList: PriceList): CostComparison {
  const ours = monthlyCost(inputs, priceList, 'this');
  const earlier = monthlyCost(inputs, priceList, 'earlier');
  return {
    inputs,
    prices: { region: priceList.region, asOf: priceList.asOf },
    this: ours,
    earlier,
    ratio: earlier.totalUsd > 0 ? ours.totalUsd / earlier.totalUsd : Number.NaN,
  };
}

const FLAG_INPUTS: Record<string, keyof CostInputs> = {
  '--rows': 'rows',
  '--row-bytes': 'rowBytes',
  '--changed-pct': 'changedPct',
  '--runs-per-month': 'runsPerMonth',
  '--month': 'monthOfOperation',
  '--datasets': 'datasets',
};

export interface CostArgs {
  inputs: CostInputs;
  json: boolean;
  /** The environment whose synthesized templates supply the resource inputs; undefined: `--no-synth`. */
  env: string | undefined;
  /** Inputs given on the command line: the templates do not override them. */
  given: Set<keyof CostInputs>;
}

/** Parse CLI flags into inputs; `--set name=value` overrides any other input by its name. */
export function parseCostArgs(argv: string[]): CostArgs {
  const inputs: CostInputs = { ...DEFAULT_INPUTS };
  const given = new Set<keyof CostInputs>();
  let json = false;
  let env: string | undefined = 'dev';
  const setNumber = (name: string, raw: string | undefined): void => {
    if (!(name in DEFAULT_INPUTS)) throw new Error(`Unknown cost input "${name}". Known: ${Object.keys(DEFAULT_INPUTS).join(', ')}`);
    const value = Number(raw);
    if (raw === undefined || raw === '' || !Number.isFinite(value) || value < 0) throw new Error(`${name} needs a non-negative number, got "${raw ?? ''}"`);
    inputs[name as keyof CostInputs] = value;
    given.add(name as keyof CostInputs);
  };
  for (let k = 0; k < argv.length; k += 1) {
    const arg = argv[k]!;
    const [flag, inline] = arg.includes('=') && arg.startsWith('--') && !arg.startsWith('--set') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--json') json = true;
    else if (flag === '--no-synth') env = undefined;
    else if (flag === '--env') {
      env = inline ?? argv[++k];
      if (!env || !/^[a-z][a-z0-9]{1,11}$/.test(env)) throw new Error(`--env needs an environment name such as dev or prod, got "${env ?? ''}"`);
    } else if (flag === '--set') {
      const pair = argv[++k] ?? '';
      const eq = pair.indexOf('=');
      setNumber(pair.slice(0, eq), eq > 0 ? pair.slice(eq + 1) : undefined);
    } else if (flag in FLAG_INPUTS) setNumber(FLAG_INPUTS[flag]!, inline ?? argv[++k]);
    else throw new Error(`Unknown option "${arg}". Options: ${Object.keys(FLAG_INPUTS).join(' ')} --env <name> --no-synth --set name=value --json`);
  }
  if (inputs.runsPerMonth < 1 || inputs.monthOfOperation < 1) throw new Error('--runs-per-month and --month must be at least 1');
  return { inputs, json, env, given };
}

/** The inputs a synthesized environment determines: what it creates and how large its compute is. */
export function inputsFromInventory(inv: TemplateInventory): Partial<CostInputs> {
  return {
    datasets: inv.datasets,
    // A key in a dataset stack would be per dataset; there is none, and the fixed count covers it if one appears.
    kmsKeys: inv.fixed.kmsKeys + inv.perDataset.kmsKeys * inv.datasets,
    dashboards: inv.fixed.dashboards,
    alarmMetricsFixed: inv.fixed.alarmMetrics,
    alarmMetricsPerDataset: inv.perDataset.alarmMetrics,
    compositeAlarmsFixed: inv.fixed.compositeAlarms,
    compositeAlarmsPerDataset: inv.perDataset.compositeAlarms,
    secretsFixed: inv.fixed.secrets,
    secretsPerDataset: inv.perDataset.secrets,
    ...(inv.perDataset.crawlers === 0 ? { driftRunsPerMonth: 0 } : {}),
    lambdaMemoryMB: inv.perDataset.fetcherMemoryMB,
    fargateVcpu: inv.perDataset.transformVcpu,
    fargateMemoryGB: inv.perDataset.transformMemoryGB,
  };
}

/** `inputs` with what the templates determine, except inputs given on the command line. */
export function applyInventory(inputs: CostInputs, inv: TemplateInventory, given: ReadonlySet<keyof CostInputs> = new Set()): CostInputs {
  const out = { ...inputs };
  for (const [k, v] of Object.entries(inputsFromInventory(inv)) as Array<[keyof CostInputs, number]>) if (!given.has(k)) out[k] = v;
  return out;
}

const usd = (n: number): string => `$${n.toFixed(2)}`;
const usd3 = (n: number): string => `$${n.toFixed(3)}`;
const qty = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));

/** The comparison as a Markdown table (docs/cost.md carries one). */
export function renderCostTable(c: CostComparison, inventory?: TemplateInventory): string {
  const out: string[] = [];
  const i = c.inputs;
  const parts = costParts(c.this, i);
  out.push(
    `Monthly cost${inventory ? ` of the ${inventory.environment} environment (${inventory.encryption} encryption)` : ''}, ${c.prices.region} list prices of ${c.prices.asOf}: ` +
      `${i.datasets} dataset${i.datasets === 1 ? '' : 's'} of ${i.rows.toLocaleString('en-US')} rows × ${i.rowBytes} B, ` +
      `${i.changedPct}% changed per run, ${i.runsPerMonth} runs/month, month ${i.monthOfOperation} of operation.`,
    '',
    inventory
      ? `From the synthesized ${inventory.environment} templates: ${i.kmsKeys} customer-managed KMS key(s), ${i.dashboards} dashboard(s), ` +
          `${i.alarmMetricsPerDataset} alarm metric(s) per dataset (+${i.alarmMetricsFixed} for the environment), ${i.compositeAlarmsPerDataset + i.compositeAlarmsFixed} composite alarm(s), ` +
          `${i.secretsPerDataset} secret(s) per dataset (+${i.secretsFixed}), fetcher ${i.lambdaMemoryMB} MB, transform ${i.fargateVcpu} vCPU / ${i.fargateMemoryGB} GB; ` +
          `the crawler runs on ${i.driftRunsPerMonth} drift run(s) a month (an assumption).`
      : 'Resource inputs: DEFAULT_INPUTS / --set (no synthesized templates: --no-synth).',
    '',
    '| part | USD a month |',
    '|---|---:|',
    `| fixed, per environment | ${usd(parts.fixedUsd)} |`,
    `| per added dataset (its own lines + ${i.runsPerMonth} runs) | ${usd(parts.perDatasetUsd)} |`,
    `| per run of one dataset | ${usd3(parts.perRunUsd)} |`,
    `| **total: fixed + ${i.datasets} × per dataset** | **${usd(parts.totalUsd)}** |`,
    '',
  );
  for (const r of [c.this, c.earlier]) {
    out.push(`${r.design === 'this' ? 'This design' : 'Earlier design (one dataset)'}`, '', '| item | part | quantity | unit | USD |', '|---|---|---:|---|---:|');
    for (const l of r.lines) out.push(`| ${l.item} | ${l.part} | ${qty(l.quantity)} | ${l.unit} | ${usd(l.usd)} |`);
    out.push(`| **total** | | | | **${usd(r.totalUsd)}** |`, '');
    for (const w of r.warnings) out.push(`Warning: ${w}`, '');
  }
  out.push(`This design costs ${(c.ratio * 100).toFixed(1)}% of the earlier one (${usd(c.this.totalUsd)} vs ${usd(c.earlier.totalUsd)} a month).`);
  return out.join('\n');
}

const USAGE = `usage: npm run cost -- [options]
Prices one month of this pipeline (fixed per environment, per added dataset, per run) against the
earlier design, from bench/prices.json and the synthesized templates of one environment (docs/cost.md).
  --env <name>        the environment whose templates are priced (default dev; prod needs no real settings)
  --no-synth          price DEFAULT_INPUTS and --set values only (no synth, seconds faster)
  ${Object.keys(FLAG_INPUTS).map((f) => `${f} <n>`).join('  ')}
  --set <input>=<n>   any other input by name (${Object.keys(DEFAULT_INPUTS).join(', ')})
  --json              inputs, inventory, parts, both designs' lines and totals, ratio as JSON
  -h, --help          this text`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let args: CostArgs;
  try {
    args = parseCostArgs(argv);
  } catch (err) {
    // A usage error, as in every other command: exit 2.
    console.error(`cost: ${(err as Error).message} (npm run cost -- --help)`);
    process.exitCode = 2;
    return;
  }
  try {
    const { json, env, given } = args;
    let inputs = args.inputs;
    let inventory: TemplateInventory | undefined;
    if (env) {
      const { templateInventory } = await import('./template-inventory');
      inventory = templateInventory(env);
      inputs = applyInventory(inputs, inventory, given);
    }
    const comparison = compareDesigns(inputs, loadPrices());
    console.log(json ? JSON.stringify({ ...comparison, inventory, parts: costParts(comparison.this, inputs) }) : renderCostTable(comparison, inventory));
  } catch (err) {
    // Configuration that does not exist or does not validate (an environment) exits 2, as in cdk synth.
    const config = errorCategory(err) === 'config';
    console.error(`cost: ${(err as Error).message}${config ? ' (npm run cost -- --env <name>)' : ''}`);
    process.exitCode = exitCodeFor(err);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
