/**
 * `npm run dataset -- <command>`: add a dataset definition from its portal's metadata, or
 * regenerate the dataset JSON Schema. The logic lives here, with its collaborators (HTTP, output
 * streams, directories) passed in, so tests run it in-process; local/dataset-cli.ts only wires it.
 * Exit codes: 0 done, 1 could not fetch or write, 2 bad usage or input (URL, file, dataset).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import axios from 'axios';
import { parseDataset } from '../runtime/dataset-config';
import { DATASET_SCHEMA_PATH, datasetJsonSchemaText } from '../runtime/dataset-json-schema';
import { PipelineError, SourceError, UsageError } from '../runtime/pipeline-error';
import { proposeDataset, readViewDocument } from '../runtime/socrata-metadata';
import { S3_URL_PATTERN } from '../runtime/s3-location';
import type { FileFormat } from '../runtime/file-formats';
import { DEFAULT_SAMPLE_BYTES, listSampleObjects, MAX_SAMPLE_BYTES, sampleHttpFile, sampleS3Prefix } from './dataset-sample';
import { proposeFromSample } from './dataset-sample-proposal';
import { addCkanDataset, isCkanAddTarget } from './ckan-add';
import { LAYER_URL, proposeArcgisDataset } from './arcgis-dataset';

const REPO_ROOT = path.join(import.meta.dirname, '..');

export const USAGE = `usage: npm run dataset -- <command> [options]

commands:
  add <portal URL | metadata file>   write datasets/<name>.json from the dataset's Socrata metadata
      or an ArcGIS layer URL https://<host>/.../FeatureServer/<n> (its ?f=json metadata)
      URL: https://<portal>/d/<id>, .../resource/<id>.json, .../api/views/<id>.json or the dataset page
      file: a saved https://<portal>/api/views/<id>.json, or a rows.json export
  add <file URL | s3://bucket/prefix/>   write datasets/<name>.json from a sample of the data
      URL: https://host/path/file.csv, .ndjson, .jsonl or .json (a JSON array), each optionally .gz
      s3://: the first objects under the prefix, in key order (S3 at AWS_ENDPOINT_URL_S3 when set)
      the sample infers columns and types, a key and an event time; what it cannot decide is a
      QUESTION (exit 2, nothing written) naming the flag that answers it
    --name <name>          dataset name, kebab-case (default: from the portal title, file name or prefix)
    --domain <host>        portal host for a file that does not name it, e.g. data.sfgov.org
    --primary-key <field>  use this column as the primary key instead of the proposed one
    --event-time <field>   use this timestamp column as the event time instead of the proposed one
    --exclude <f1,f2,...>  leave these source fields out (repeatable)
    --format <format>      file and S3 sources: csv, ndjson or json (default: from the extension)
    --sample-bytes <n>     file and S3 sources: read at most n bytes (default ${DEFAULT_SAMPLE_BYTES})
    --key <f1,f2,...>      S3 sources: the fields (dotted paths) that together identify a row
    --mode <mode>          S3 sources: append (default; each new object once) or snapshot
    --force                overwrite an existing definition
    --dry-run              print the definition instead of writing it
    --out-dir <dir>        write there instead of datasets/
  schema [--check]         regenerate ${DATASET_SCHEMA_PATH} from the zod schema
                           (--check: exit 1 if the committed file is out of date)
  --help                   this text

exit codes: 0 done, 1 could not fetch or write, 2 bad usage or input`;

export interface DatasetCommandDeps {
  /** GET a URL and return its parsed JSON body; throws an axios-shaped error on failure. */
  fetchJson(url: string): Promise<unknown>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Repository root: datasets/ and the schema file live under it. */
  repoRoot: string;
  /** The S3 client an s3:// source is sampled with (default: AWS, or AWS_ENDPOINT_URL_S3 when set). */
  s3?: () => S3Client;
}

// The endpoint as the fetcher's handler passes it, so a prefix that samples here is one the fetcher reaches.
const defaultS3 = (): S3Client => {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || undefined;
  return new S3Client(endpoint ? { endpoint } : {});
};

const REQUEST_TIMEOUT_MS = 30_000;

export const defaultDeps: DatasetCommandDeps = {
  async fetchJson(url) {
    // A portal answers anonymous metadata requests; an app token only raises the rate limit.
    const token = process.env.SOCRATA_APP_TOKEN;
    const res = await axios.get<unknown>(url, {
      timeout: REQUEST_TIMEOUT_MS,
      responseType: 'json',
      headers: { Accept: 'application/json', ...(token ? { 'X-App-Token': token } : {}) },
    });
    return res.data;
  },
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  repoRoot: REPO_ROOT,
};

/**
 * The portal host and 4x4 id of a dataset URL: /d/<id>, /resource/<id>[.json], /api/views/<id>
 * [.json][/rows.json], or the dataset page /<category>/<title>/<id>[/about_data].
 */
export function parsePortalUrl(text: string): { domain: string; datasetId: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL`);
  }
  const example = 'e.g. https://data.sfgov.org/d/wr8u-xric';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`${url.protocol} URLs are not supported: give the dataset's https:// URL, ${example}`);
  if (!/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(url.hostname)) throw new UsageError(`"${url.hostname}" is not a portal host name: give the dataset's URL, ${example}`);
  const segments = url.pathname.split('/').filter(Boolean).map((s) => s.replace(/\.(json|csv|geojson|xml)$/, ''));
  const is4x4 = (s: string | undefined) => s !== undefined && /^[a-z0-9]{4}-[a-z0-9]{4}$/.test(s);
  const marker = segments.findIndex((s, i) => ['d', 'resource', 'views'].includes(s) && is4x4(segments[i + 1]));
  const datasetId = marker >= 0 ? segments[marker + 1] : [...segments].reverse().find(is4x4);
  if (!datasetId) throw new UsageError(`${url.origin}${url.pathname} names no Socrata dataset id (a 4x4 such as wr8u-xric): give the dataset's URL, ${example}`);
  return { domain: url.hostname.toLowerCase(), datasetId };
}

/** One line for a failed metadata request; a missing dataset is the caller's input (2), the rest is the network's (1). */
function fetchFailure(url: string, err: unknown): PipelineError {
  const e = err as { response?: { status?: number }; code?: string; message?: string };
  const status = e.response?.status;
  if (status === 404) return new UsageError(`no dataset at ${url} (HTTP 404): check the dataset id in the URL`);
  if (status === 401 || status === 403) return new SourceError(`${url} answered HTTP ${status}: the dataset is private (set SOCRATA_APP_TOKEN for a token that may read it) or the URL is wrong`);
  if (status !== undefined) return new SourceError(`${url} answered HTTP ${status}: try again later, or save that URL's JSON from a browser and pass the file`);
  const host = new URL(url).hostname;
  const why = e.code ?? e.message ?? String(err);
  return new SourceError(`cannot reach ${host} (${why}) for ${url}: check the host name and the network, or save that URL's JSON and pass the file`);
}

async function readMetadata(source: string, domainFlag: string | undefined, deps: DatasetCommandDeps) {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    const { domain, datasetId } = parsePortalUrl(source);
    const url = `https://${domain}/api/views/${datasetId}.json`;
    let body: unknown;
    try {
      body = await deps.fetchJson(url);
    } catch (err) {
      throw fetchFailure(url, err);
    }
    const view = readViewDocument(body, url);
    if (view.id !== datasetId) throw new UsageError(`${url} describes dataset ${view.id}, not ${datasetId}: give the dataset's own URL`);
    return { view, domain: domainFlag ?? domain };
  }
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    const hint = /^[a-z0-9.-]+\.[a-z]{2,}\//i.test(source) ? ' (for a portal URL, start it with https://)' : '';
    throw new UsageError(`cannot read metadata file ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}${hint}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source} is not JSON (${(err as Error).message}): save the JSON of https://<portal>/api/views/<id>.json`);
  }
  const view = readViewDocument(value, source);
  const domain = domainFlag ?? view.domainCName;
  if (!domain) throw new UsageError(`${source} does not name its portal: pass --domain <portal host>, e.g. --domain data.sfgov.org`);
  return { view, domain };
}

type AddValues = { name?: string; domain?: string; 'primary-key'?: string; 'event-time'?: string; exclude?: string[] };

async function proposeView(source: string, values: AddValues, deps: DatasetCommandDeps) {
  const { view, domain } = await readMetadata(source, values.domain, deps);
  const exclude = (values.exclude ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const { definition, notes } = proposeDataset(view, {
    domain,
    ...(values.name ? { name: values.name } : {}),
    ...(values['primary-key'] ? { primaryKey: values['primary-key'] } : {}),
    ...(values['event-time'] ? { eventTimeColumn: values['event-time'] } : {}),
    exclude,
  });
  return { definition, notes, source: `${domain}/${view.id}`, label: `${view.name} (${domain}/${view.id})` };
}

/** An ArcGIS FeatureServer layer URL: the definition from the layer's metadata (local/arcgis-dataset.ts). */
async function proposeLayer(url: string, values: AddValues, deps: DatasetCommandDeps) {
  const metadataUrl = `${url.replace(/\/+$/, '')}?f=json`;
  let body: unknown;
  try {
    body = await deps.fetchJson(metadataUrl);
  } catch (err) {
    throw fetchFailure(metadataUrl, err);
  }
  const { definition, notes } = proposeArcgisDataset(body, url, {
    ...(values.name ? { name: values.name } : {}),
    ...(values['primary-key'] ? { primaryKey: values['primary-key'] } : {}),
    ...(values['event-time'] ? { eventTimeColumn: values['event-time'] } : {}),
  });
  return { definition, notes, source: url, label: `ArcGIS layer ${url}` };
}

async function add(argv: string[], deps: DatasetCommandDeps): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      domain: { type: 'string' },
      'primary-key': { type: 'string' },
      'event-time': { type: 'string' },
      exclude: { type: 'string', multiple: true },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'out-dir': { type: 'string' },
      format: { type: 'string' },
      'sample-bytes': { type: 'string' },
      key: { type: 'string' },
      mode: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    deps.stdout(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`add takes one portal URL or metadata file, got ${positionals.length} (or one data file URL or s3:// prefix); see npm run dataset -- --help`);
  const target = positionals[0]!;
  const exclude = (values.exclude ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const sourceType = dataSourceType(target, values.format);
  if (sourceType) return addSampled(target, sourceType, { ...values, exclude }, deps);
  const fileOnly = (['format', 'sample-bytes', 'key', 'mode'] as const).filter((f) => values[f] !== undefined);
  if (fileOnly.length) throw new UsageError(`--${fileOnly.join(', --')} ${fileOnly.length > 1 ? 'are' : 'is'} for file and S3 sources; ${target} is read as portal metadata`);
  const { definition, notes, source, label } = LAYER_URL.test(target) ? await proposeLayer(target, values, deps) : await proposeView(target, values, deps);
  // The proposal goes through the same validation as every definition at synth and before a run.
  parseDataset(definition, `proposed for ${source}`);
  const text = `${JSON.stringify(definition, null, 2)}\n`;
  const name = String(definition.name);
  if (values['dry-run']) {
    deps.stdout(text);
    for (const note of notes) deps.stderr(`  ${note}\n`);
    return 0;
  }
  const file = writeDefinition(text, name, values['out-dir'], values.force, deps);
  deps.stdout(`wrote ${path.relative(process.cwd(), file) || file}: ${label}, ${(definition.columns as unknown[]).length} columns\n`);
  for (const note of notes) deps.stdout(`  ${note}\n`);
  deps.stdout('  review it (descriptions, tests, schedule), then run npm run local -- --dataset ' + name + ' or npx cdk synth\n');
  return 0;
}

/** Writes a definition aside and renames it, so an interrupted run never leaves half a definition for synth to trip on. */
function writeDefinition(text: string, name: string, outDir: string | undefined, force: boolean, deps: DatasetCommandDeps): string {
  const dir = path.resolve(outDir ?? path.join(deps.repoRoot, 'datasets'));
  const file = path.join(dir, `${name}.json`);
  if (existsSync(file) && !force) throw new UsageError(`${file} already exists: pass --force to overwrite it, or --name <another-name>`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    throw new Error(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  return file;
}

const FILE_FORMATS: readonly FileFormat[] = ['csv', 'ndjson', 'json'];

/** The format a file name says: .csv, .ndjson/.jsonl or .json, optionally followed by .gz. */
export function formatFromName(name: string): FileFormat | undefined {
  const m = /\.(csv|ndjson|jsonl|json)(\.gz)?$/i.exec(name);
  if (!m) return undefined;
  const ext = m[1]!.toLowerCase();
  return ext === 'jsonl' ? 'ndjson' : (ext as FileFormat);
}

/**
 * Whether `add` samples the target as data rather than reading Socrata metadata: every s3:// URL;
 * an http(s) URL when --format is given, or when it names a data file and no Socrata dataset id
 * (a portal's /resource/<id>.json is its API, not a file).
 */
function dataSourceType(target: string, format: string | undefined): 'file' | 's3' | undefined {
  if (/^s3:\/\//i.test(target)) return 's3';
  if (!/^https?:\/\//i.test(target)) return undefined;
  if (format !== undefined) return 'file';
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  if (!formatFromName(url.pathname)) return undefined;
  try {
    parsePortalUrl(target);
    return undefined;
  } catch {
    return 'file';
  }
}

interface SampledAddFlags {
  name?: string | undefined;
  domain?: string | undefined;
  'primary-key'?: string | undefined;
  'event-time'?: string | undefined;
  exclude: string[];
  force?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  'out-dir'?: string | undefined;
  format?: string | undefined;
  'sample-bytes'?: string | undefined;
  key?: string | undefined;
  mode?: string | undefined;
}

/** `add <file URL | s3://prefix/>`: sample, propose, and write only when nothing is left to ask. */
async function addSampled(target: string, sourceType: 'file' | 's3', flags: SampledAddFlags, deps: DatasetCommandDeps): Promise<number> {
  if (flags.domain !== undefined) throw new UsageError('--domain is for Socrata metadata files; a file or S3 source names its own location');
  if (sourceType === 'file') {
    for (const f of ['key', 'mode'] as const) if (flags[f] !== undefined) throw new UsageError(`--${f} is for S3 sources; ${target} is one file`);
  }
  if (flags.key !== undefined && flags['primary-key'] !== undefined) throw new UsageError('give --key (an S3 key of one or more fields) or --primary-key (one column), not both');
  const url = sourceType === 's3' ? target : new URL(target).href;
  if (sourceType === 's3' && !S3_URL_PATTERN.test(url)) {
    throw new UsageError(`"${target}" is not an s3://<bucket>/<prefix>/ URL (a bucket name of 3-63 lowercase letters, digits, dots or hyphens)`);
  }
  if (flags.format !== undefined && !FILE_FORMATS.includes(flags.format as FileFormat)) throw new UsageError(`--format must be csv, ndjson or json, got "${flags.format}"`);
  if (flags.mode !== undefined && flags.mode !== 'append' && flags.mode !== 'snapshot') throw new UsageError(`--mode must be append or snapshot, got "${flags.mode}"`);
  const sampleBytes = flags['sample-bytes'] === undefined ? DEFAULT_SAMPLE_BYTES : Number(flags['sample-bytes']);
  if (!Number.isSafeInteger(sampleBytes) || sampleBytes < 1 || sampleBytes > MAX_SAMPLE_BYTES) {
    throw new UsageError(`--sample-bytes must be a whole number of bytes from 1 to ${MAX_SAMPLE_BYTES} (256 MiB), got "${flags['sample-bytes']}"`);
  }
  const key = flags.key?.split(',').map((k) => k.trim()).filter(Boolean);
  if (flags.key !== undefined && !key?.length) throw new UsageError('--key needs at least one field, e.g. --key event,data.id,at');

  let format = flags.format as FileFormat | undefined;
  let sample;
  if (sourceType === 'file') {
    format ??= formatFromName(new URL(url).pathname);
    if (!format) throw new UsageError(`${url} does not end in .csv, .ndjson, .jsonl or .json (optionally .gz): pass --format csv|ndjson|json`);
    sample = await sampleHttpFile(url, { format, formatGiven: flags.format !== undefined, maxBytes: sampleBytes });
  } else {
    const s3 = (deps.s3 ?? defaultS3)();
    if (!format) {
      // The first object's name says the format, as the first object is what the sample reads.
      const first = (await listSampleObjects(s3, url, 1)).objects[0];
      format = first ? formatFromName(first.key) : undefined;
      if (first && !format) throw new UsageError(`the first object under ${url} (${first.key}) does not end in .csv, .ndjson, .jsonl or .json (optionally .gz): pass --format csv|ndjson|json`);
      format ??= 'ndjson';
    }
    sample = await sampleS3Prefix(s3, url, { format, formatGiven: flags.format !== undefined, maxBytes: sampleBytes });
  }
  const proposal = proposeFromSample(sample, {
    sourceType,
    url,
    format: sample.format,
    sampleBytes,
    exclude: flags.exclude,
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags['primary-key'] ? { primaryKey: flags['primary-key'] } : {}),
    ...(flags['event-time'] ? { eventTimeColumn: flags['event-time'] } : {}),
    ...(key ? { key } : {}),
    ...(flags.mode ? { mode: flags.mode as 'append' | 'snapshot' } : {}),
  });
  if (proposal.questions.length) {
    deps.stderr(`dataset: ${proposal.questions.length} question(s) to answer before a definition of ${url} can be written; nothing written\n`);
    for (const note of proposal.notes) deps.stderr(`  ${note}\n`);
    for (const q of proposal.questions) deps.stderr(`  QUESTION ${q}\n`);
    return 2;
  }
  const { definition, notes } = proposal;
  // The proposal goes through the same validation as every definition at synth and before a run.
  parseDataset(definition, `proposed for ${url}`);
  const text = `${JSON.stringify(definition, null, 2)}\n`;
  if (flags['dry-run']) {
    deps.stdout(text);
    for (const note of notes) deps.stderr(`  ${note}\n`);
    return 0;
  }
  const name = String(definition.name);
  const file = writeDefinition(text, name, flags['out-dir'], flags.force === true, deps);
  deps.stdout(`wrote ${path.relative(process.cwd(), file) || file}: ${url}, ${(definition.columns as unknown[]).length} columns\n`);
  for (const note of notes) deps.stdout(`  ${note}\n`);
  deps.stdout(`  review it (description, tests, schedule), then run npm run local -- --dataset ${name} or npx cdk synth\n`);
  return 0;
}

function schema(argv: string[], deps: DatasetCommandDeps): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { check: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    deps.stdout(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length) throw new UsageError(`schema takes no arguments, got "${positionals.join(' ')}"`);
  const file = path.join(deps.repoRoot, DATASET_SCHEMA_PATH);
  const text = datasetJsonSchemaText();
  if (values.check) {
    const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (current === text) return 0;
    throw new Error(`${DATASET_SCHEMA_PATH} is out of date with runtime/dataset-config.ts: run npm run dataset -- schema and commit it`);
  }
  writeFileSync(file, text);
  deps.stdout(`wrote ${DATASET_SCHEMA_PATH}\n`);
  return 0;
}

/**
 * The one place this command maps an error to its exit code and its one line: ours
 * (runtime/pipeline-error.ts) exit with their own code (2: the input is wrong, as for a usage
 * error; 1: the portal or the network failed), anything else 1.
 */
function failureLine(err: unknown): [message: string, exitCode: number] {
  const e = err as Error;
  // A proposal that fails validation (a bad --name, an unusual dataset) lists one issue per line
  // and field: joined into the one line every failure here is.
  if (e instanceof PipelineError) return [e.message.replace(/:\n {2}- /, ': ').replace(/\n {2}- /g, '; '), e.exitCode];
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return [`${e.message}; see npm run dataset -- --help`, 2];
  return [e.message.split('\n')[0] ?? String(err), 1];
}

/** Runs one command; every failure is printed as one line on stderr. */
export async function runDatasetCommand(argv: string[], deps: DatasetCommandDeps = defaultDeps): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      deps.stdout(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    }
    if (command === 'add' && rest.some(isCkanAddTarget)) return await addCkanDataset(rest, deps);
    if (command === 'add') return await add(rest, deps);
    if (command === 'schema') return schema(rest, deps);
    throw new UsageError(`unknown command "${command}": use add or schema (npm run dataset -- --help)`);
  } catch (err) {
    const [message, code] = failureLine(err);
    deps.stderr(`dataset: ${message}\n`);
    return code;
  }
}
