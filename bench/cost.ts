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
import { billedRecordBytes } from './firehose-billing';

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
  kmsRequestsPerRun: number;
  cloudwatchAlarms: number;
  cloudwatchDashboards: number;
  secrets: number;

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
  lambdaMemoryMB: 1_024,
  lambdaOverheadSecondsPerInvocation: 2,
  lambdaBudgetSeconds: 600,
  stepFunctionsFixedTransitionsPerRun: 25,
  stepFunctionsTransitionsPerFetchLoop: 3,
  fargateVcpu: 1,
  fargateMemoryGB: 2,
  transformTaskMinutes: 4,
  dataTestQueriesPerRun: 12,
  curatedQueryScanFraction: 0.05,
  curatedFilesWrittenPerRun: 40,
  curatedGetsPerQuery: 50,
  kmsRequestsPerRun: 300,
  cloudwatchAlarms: 6,
  cloudwatchDashboards: 1,
  secrets: 1,

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

export interface CostLine {
  item: string;
  quantity: number;
  unit: string;
  usd: number;
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
  const p = (name: PriceName): number => priceList.prices[name].usd;
  const i = inputs;
  const lines: CostLine[] = [];
  const warnings: string[] = [];
  const add = (item: string, quantity: number, unit: string, usd: number): void => {
    lines.push({ item, quantity, unit, usd });
  };
  const N = i.runsPerMonth;
  const m = i.monthOfOperation;
  // Average count of runs whose data is stored during month m (the month's runs count half).
  const runsStored = N * (m - 0.5);

  if (design === 'this') {
    const rawRowBytes = i.rowBytes + i.metadataBytesPerRow;
    const changedRows = Math.ceil((i.rows * i.changedPct) / 100);
    const payload = changedRows * rawRowBytes;
    const { records, billedBytes } = packedBilledBytes(payload, i.packedRecordBytes);
    add('Firehose ingestion (packed records)', (billedBytes * N) / GB, 'GB billed', ((billedBytes * N) / GB) * p('firehoseIngestionPerGB'));

    const fetchSeconds = changedRows / i.fetchRowsPerSecond;
    if (i.lambdaBudgetSeconds + i.lambdaOverheadSecondsPerInvocation > LAMBDA_MAX_SECONDS) {
      warnings.push(`lambdaBudgetSeconds ${i.lambdaBudgetSeconds} plus overhead exceeds Lambda's ${LAMBDA_MAX_SECONDS} s limit`);
    }
    const invocations = Math.max(1, Math.ceil(fetchSeconds / i.lambdaBudgetSeconds));
    const lambdaSeconds = fetchSeconds + invocations * i.lambdaOverheadSecondsPerInvocation;
    const gbSeconds = lambdaSeconds * (i.lambdaMemoryMB / 1024) * N;
    add('Lambda fetcher compute', gbSeconds, 'GB-s', gbSeconds * p('lambdaPerGBSecond'));
    add('Lambda requests', invocations * N, 'requests', ((invocations * N) / 1e6) * p('lambdaPerMillionRequests'));

    const transitions = (i.stepFunctionsFixedTransitionsPerRun + invocations * i.stepFunctionsTransitionsPerFetchLoop) * N;
    add('Step Functions transitions', transitions, 'transitions', (transitions / 1000) * p('stepFunctionsPerThousandTransitions'));

    const taskHours = (i.transformTaskMinutes / 60) * N;
    add('Fargate transform vCPU', taskHours * i.fargateVcpu, 'vCPU-hours', taskHours * i.fargateVcpu * p('fargatePerVcpuHour'));
    add('Fargate transform memory', taskHours * i.fargateMemoryGB, 'GB-hours', taskHours * i.fargateMemoryGB * p('fargatePerGBHour'));
    // No NAT: the task runs in a public subnet and holds a public IPv4 address only while it runs.
    add('Public IPv4 for the task (no NAT)', taskHours, 'address-hours', taskHours * p('publicIpv4PerHour'));

    const curatedBytes = i.rows * rawRowBytes * i.parquetToJsonRatio;
    const newRawGz = payload * i.gzipRatio;
    // MERGE reads the new raw partition and the curated table; marts and tests read pruned columns.
    const perRunScan =
      athenaBilledBytes(newRawGz + curatedBytes) +
      i.martQueriesPerRun * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction) +
      i.dataTestQueriesPerRun * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction);
    const userScan = i.userQueriesPerMonth * athenaBilledBytes(curatedBytes * i.curatedQueryScanFraction);
    const scanned = perRunScan * N + userScan;
    add('Athena scanned (Parquet: MERGE, marts, tests, users)', scanned / TB, 'TB', (scanned / TB) * p('athenaPerTBScanned'));

    const rawStored = (i.rows * rawRowBytes + payload * runsStored) * i.gzipRatio;
    add('S3 storage raw (gzip NDJSON)', rawStored / GB, 'GB-month', (rawStored / GB) * p('s3StandardPerGBMonth'));
    add('S3 storage curated (Parquet)', curatedBytes / GB, 'GB-month', (curatedBytes / GB) * p('s3StandardPerGBMonth'));
    const firehoseObjects = Math.max(1, records > 0 ? Math.ceil(payload / (64 * 1024 * 1024)) : 0);
    const puts = (firehoseObjects + i.curatedFilesWrittenPerRun + 5) * N;
    add('S3 PUT/LIST requests', puts, 'requests', (puts / 1000) * p('s3PutPerThousand'));
    const queries = (1 + i.martQueriesPerRun + i.dataTestQueriesPerRun) * N + i.userQueriesPerMonth;
    const gets = queries * i.curatedGetsPerQuery;
    add('S3 GET requests', gets, 'requests', (gets / 1000) * p('s3GetPerThousand'));

    add('KMS customer managed key', 1, 'key-month', p('kmsKeyPerMonth'));
    add('KMS requests (S3 Bucket Keys on)', i.kmsRequestsPerRun * N, 'requests', ((i.kmsRequestsPerRun * N) / 10_000) * p('kmsPerTenThousandRequests'));
    add('Secrets Manager (app token)', i.secrets, 'secret-months', i.secrets * p('secretsManagerPerSecretMonth'));
    addCommon(lines, i, p, m);
    add('CloudWatch alarms', i.cloudwatchAlarms, 'alarm-months', i.cloudwatchAlarms * p('cloudwatchAlarmPerMonth'));
    add('CloudWatch dashboard', i.cloudwatchDashboards, 'dashboard-months', i.cloudwatchDashboards * p('cloudwatchDashboardPerMonth'));
  } else {
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

    add('NAT gateway hours', HOURS_PER_MONTH, 'hours', HOURS_PER_MONTH * p('natGatewayPerHour'));
    // Through the NAT: the source download, the Firehose upload (base64 in JSON, 4/3) and the image pull.
    const natBytes = (payload + (payload * 4) / 3 + i.containerImageGB * GB) * N;
    add('NAT gateway data processed', natBytes / GB, 'GB', (natBytes / GB) * p('natGatewayPerGB'));

    const rawStored = payload * runsStored;
    // Every query reads every raw JSON object ever delivered (no partitions, no compression, no dedup).
    const scannedPerQuery = athenaBilledBytes(rawStored);
    const queries = i.martQueriesPerRun * N + i.userQueriesPerMonth;
    const scanned = scannedPerQuery * queries;
    add('Athena scanned (raw JSON, all history)', scanned / TB, 'TB', (scanned / TB) * p('athenaPerTBScanned'));

    add('S3 storage raw (uncompressed JSON)', rawStored / GB, 'GB-month', (rawStored / GB) * p('s3StandardPerGBMonth'));
    const objectsPerRun = Math.ceil(payload / (i.earlierFirehoseBufferMiB * 1024 * 1024));
    const puts = (objectsPerRun + i.martQueriesPerRun) * N;
    add('S3 PUT/LIST requests', puts, 'requests', (puts / 1000) * p('s3PutPerThousand'));
    const gets = objectsPerRun * runsStored * queries;
    add('S3 GET requests', gets, 'requests', (gets / 1000) * p('s3GetPerThousand'));
    addCommon(lines, i, p, m);
  }

  const totalUsd = lines.reduce((sum, l) => sum + l.usd, 0);
  return { design, lines, totalUsd, warnings };
}

/** Costs both designs share in shape: crawler, container image, logs. */
function addCommon(lines: CostLine[], i: CostInputs, p: (n: PriceName) => number, month: number): void {
  const N = i.runsPerMonth;
  const dpuHours = i.crawlerDpuHoursPerRun * N;
  lines.push({ item: 'Glue crawler', quantity: dpuHours, unit: 'DPU-hours', usd: dpuHours * p('glueCrawlerPerDpuHour') });
  lines.push({ item: 'ECR image storage', quantity: i.containerImageGB, unit: 'GB-month', usd: i.containerImageGB * p('ecrStoragePerGBMonth') });
  const logGB = (i.logBytesPerRun * N) / GB;
  lines.push({ item: 'CloudWatch Logs ingestion', quantity: logGB, unit: 'GB', usd: logGB * p('cloudwatchLogsIngestionPerGB') });
  const storedLogGB = logGB * (month - 0.5);
  lines.push({ item: 'CloudWatch Logs storage', quantity: storedLogGB, unit: 'GB-month', usd: storedLogGB * p('cloudwatchLogsStoragePerGBMonth') });
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
};

/** Parse CLI flags into inputs; `--set name=value` overrides any other input by its name. */
export function parseCostArgs(argv: string[]): { inputs: CostInputs; json: boolean } {
  const inputs: CostInputs = { ...DEFAULT_INPUTS };
  let json = false;
  const setNumber = (name: string, raw: string | undefined): void => {
    if (!(name in DEFAULT_INPUTS)) throw new Error(`Unknown cost input "${name}". Known: ${Object.keys(DEFAULT_INPUTS).join(', ')}`);
    const value = Number(raw);
    if (raw === undefined || raw === '' || !Number.isFinite(value) || value < 0) throw new Error(`${name} needs a non-negative number, got "${raw ?? ''}"`);
    inputs[name as keyof CostInputs] = value;
  };
  for (let k = 0; k < argv.length; k += 1) {
    const arg = argv[k]!;
    const [flag, inline] = arg.includes('=') && arg.startsWith('--') && !arg.startsWith('--set') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--json') json = true;
    else if (flag === '--set') {
      const pair = argv[++k] ?? '';
      const eq = pair.indexOf('=');
      setNumber(pair.slice(0, eq), eq > 0 ? pair.slice(eq + 1) : undefined);
    } else if (flag in FLAG_INPUTS) setNumber(FLAG_INPUTS[flag]!, inline ?? argv[++k]);
    else throw new Error(`Unknown option "${arg}". Options: ${Object.keys(FLAG_INPUTS).join(' ')} --set name=value --json`);
  }
  if (inputs.runsPerMonth < 1 || inputs.monthOfOperation < 1) throw new Error('--runs-per-month and --month must be at least 1');
  return { inputs, json };
}

const usd = (n: number): string => `$${n.toFixed(2)}`;
const qty = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));

/** The comparison as a Markdown table (docs/cost.md carries one). */
export function renderCostTable(c: CostComparison): string {
  const out: string[] = [];
  const i = c.inputs;
  out.push(
    `Monthly cost, ${c.prices.region} list prices of ${c.prices.asOf}: ${i.rows.toLocaleString('en-US')} rows × ${i.rowBytes} B, ` +
      `${i.changedPct}% changed per run, ${i.runsPerMonth} runs/month, month ${i.monthOfOperation} of operation.`,
    '',
  );
  for (const r of [c.this, c.earlier]) {
    out.push(`${r.design === 'this' ? 'This design' : 'Earlier design'}`, '', '| item | quantity | unit | USD |', '|---|---:|---|---:|');
    for (const l of r.lines) out.push(`| ${l.item} | ${qty(l.quantity)} | ${l.unit} | ${usd(l.usd)} |`);
    out.push(`| **total** | | | **${usd(r.totalUsd)}** |`, '');
    for (const w of r.warnings) out.push(`Warning: ${w}`, '');
  }
  out.push(`This design costs ${(c.ratio * 100).toFixed(1)}% of the earlier one (${usd(c.this.totalUsd)} vs ${usd(c.earlier.totalUsd)} a month).`);
  return out.join('\n');
}

const USAGE = `usage: npm run cost -- [options]
Prices one month of this pipeline against the earlier design (bench/prices.json; docs/cost.md).
  ${Object.keys(FLAG_INPUTS).map((f) => `${f} <n>`).join('  ')}
  --set <input>=<n>   any other input by name (${Object.keys(DEFAULT_INPUTS).join(', ')})
  --json              inputs, both designs' lines and totals, ratio as JSON
  -h, --help          this text`;

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let args: ReturnType<typeof parseCostArgs>;
  try {
    args = parseCostArgs(argv);
  } catch (err) {
    // A usage error, as in every other command: exit 2.
    console.error(`cost: ${(err as Error).message} (npm run cost -- --help)`);
    process.exitCode = 2;
    return;
  }
  try {
    const { inputs, json } = args;
    const comparison = compareDesigns(inputs, loadPrices());
    console.log(json ? JSON.stringify(comparison) : renderCostTable(comparison));
  } catch (err) {
    console.error(`cost: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
