/**
 * `npm run dataset -- add` for a CKAN DataStore resource: a resource page
 * (`https://<portal>/dataset/<package>/resource/<id>`), an Action API URL (`datastore_search`,
 * `resource_show` or `package_show` with its id), or a saved `datastore_search` / `package_show`
 * answer. Columns and their types come from the DataStore's `fields`; what cannot be decided from
 * the metadata (which resource of a package, which field is the key) is a question in the error,
 * never a guess presented as fact.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDataset, type ColumnType } from '../runtime/dataset-config';
import { SourceError, UsageError } from '../runtime/pipeline-error';
/** What `add` is given (dataset-command.ts's DatasetCommandDeps; declared here so neither imports the other). */
interface DatasetCommandDeps {
  fetchJson(url: string): Promise<unknown>;
  stdout(text: string): void;
  stderr(text: string): void;
  repoRoot: string;
}

/** DataStore field types (PostgreSQL's, with CKAN's aliases) as dataset column types. */
const TYPE_OF: Record<string, ColumnType> = {
  text: 'text',
  varchar: 'text',
  name: 'text',
  int: 'integer',
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  integer: 'integer',
  bigint: 'integer',
  numeric: 'number',
  float: 'number',
  float4: 'number',
  float8: 'number',
  double: 'number',
  money: 'number',
  timestamp: 'floating_timestamp',
  timestamptz: 'fixed_timestamp',
  date: 'floating_timestamp',
  bool: 'checkbox',
  boolean: 'checkbox',
  json: 'json',
  jsonb: 'json',
};

const COLUMN_NAME = /^[a-z_][a-z0-9_]*$/;
const ACTION_URL = /^(.*)\/api\/(?:3\/)?action\/(datastore_search|resource_show|package_show)\/?$/;
const RESOURCE_PAGE = /^(.*)\/dataset\/([^/]+)\/resource\/([^/]+)\/?$/;
const PACKAGE_PAGE = /^(.*)\/dataset\/([^/]+)\/?$/;

/** Does `add` hand this argument to CKAN: a CKAN URL, or a saved CKAN Action API answer? */
export function isCkanAddTarget(text: string): boolean {
  if (/^https?:\/\//i.test(text)) {
    if (!URL.canParse(text)) return false;
    const p = new URL(text).pathname;
    return ACTION_URL.test(p) || RESOURCE_PAGE.test(p) || (PACKAGE_PAGE.test(p) && !/\/[a-z0-9]{4}-[a-z0-9]{4}\/?$/.test(p));
  }
  if (!existsSync(text) || !statSync(text).isFile()) return false;
  const head = readFileSync(text, 'utf8').slice(0, 4096);
  return /help_show\?name=(datastore_search|package_show|resource_show)/.test(head);
}

interface Field {
  id: string;
  type: string;
}

interface Found {
  /** `https://<portal>[/<prefix>]/api/3/action` */
  actionBase: string;
  resourceId: string;
  fields: Field[];
  title?: string;
}

function readAction(body: unknown, where: string): Record<string, unknown> {
  const b = body as { success?: unknown; result?: unknown; error?: { __type?: string; message?: string } } | null;
  if (b?.success === true && typeof b.result === 'object' && b.result !== null) return b.result as Record<string, unknown>;
  if (b?.success === false) throw new UsageError(`${where} answered CKAN ${b.error?.__type ?? 'error'}: ${b.error?.message ?? ''}`.trim());
  throw new UsageError(`${where} is not a CKAN Action API answer (no "success"/"result")`);
}

/** The one DataStore resource of a package, or a question listing them. */
function resourceOfPackage(pkg: Record<string, unknown>, chosen: string | undefined, where: string): string {
  const resources = (Array.isArray(pkg.resources) ? pkg.resources : []) as Record<string, unknown>[];
  const stored = resources.filter((r) => r.datastore_active === true);
  if (chosen) {
    if (!stored.some((r) => r.id === chosen)) throw new UsageError(`${where}: --resource ${chosen} is not one of the package's DataStore resources`);
    return chosen;
  }
  if (stored.length === 1) return String(stored[0]!.id);
  if (!stored.length) throw new UsageError(`${where}: package ${String(pkg.name)} has no DataStore resource (datastore_active); a file resource can be added by its download URL`);
  const list = stored.map((r) => `${String(r.id)} (${String(r.name)})`).join(', ');
  throw new UsageError(`${where}: package ${String(pkg.name)} has ${stored.length} DataStore resources; which one? Pass --resource <id>: ${list}`);
}

async function get(deps: DatasetCommandDeps, url: string): Promise<unknown> {
  try {
    return await deps.fetchJson(url);
  } catch (err) {
    const e = err as { response?: { status?: number; data?: unknown }; message?: string };
    if (e.response?.data) return e.response.data; // CKAN's error body says more than the status
    throw new SourceError(`${url}: ${e.message ?? String(err)}`);
  }
}

/** The resource, its portal and its fields, from a URL (asking the portal) or a saved answer. */
async function find(target: string, resource: string | undefined, deps: DatasetCommandDeps): Promise<Found> {
  if (!/^https?:\/\//i.test(target)) {
    const saved = JSON.parse(readFileSync(target, 'utf8')) as { help?: string };
    const result = readAction(saved, target);
    const base = /^(.*\/api\/(?:3\/)?action)\/help_show/.exec(saved.help ?? '')?.[1]?.replace(/:443\//, '/').replace('/api/action', '/api/3/action');
    if (!base) throw new UsageError(`${target} does not name its portal (no "help" URL): pass the resource's URL instead`);
    if (Array.isArray(result.resources)) {
      const id = resourceOfPackage(result, resource, target);
      return find(`${base}/datastore_search?resource_id=${id}`, undefined, deps);
    }
    if (!Array.isArray(result.fields) || typeof result.resource_id !== 'string') throw new UsageError(`${target} is not a saved datastore_search or package_show answer`);
    return { actionBase: base, resourceId: result.resource_id, fields: result.fields as Field[] };
  }
  const url = new URL(target);
  let base: string;
  let id: string | undefined;
  const action = ACTION_URL.exec(url.pathname);
  const page = RESOURCE_PAGE.exec(url.pathname);
  const pkgPage = PACKAGE_PAGE.exec(url.pathname);
  if (action) {
    base = `${url.origin}${action[1]}/api/3/action`;
    const param = url.searchParams.get(action[2] === 'datastore_search' ? 'resource_id' : 'id') ?? url.searchParams.get('id');
    if (!param) throw new UsageError(`${target} names no resource (resource_id= / id=)`);
    if (action[2] === 'package_show') id = resourceOfPackage(readAction(await get(deps, target), target), resource, target);
    else id = param;
  } else if (page) {
    base = `${url.origin}${page[1]}/api/3/action`;
    id = page[3]!;
  } else {
    base = `${url.origin}${pkgPage![1]}/api/3/action`;
    const show = `${base}/package_show?id=${encodeURIComponent(pkgPage![2]!)}`;
    id = resourceOfPackage(readAction(await get(deps, show), show), resource, show);
  }
  const shown = readAction(await get(deps, `${base}/resource_show?id=${id}`), `resource_show of ${id}`);
  if (shown.datastore_active === false) throw new UsageError(`resource ${id} has no DataStore table (datastore_active is false): add it by its download URL as a file source`);
  const search = readAction(await get(deps, `${base}/datastore_search?resource_id=${id}&limit=0`), `datastore_search of ${id}`);
  return { actionBase: base, resourceId: id, fields: (search.fields ?? []) as Field[], ...(typeof shown.name === 'string' ? { title: shown.name } : {}) };
}

/** The definition for a found resource, and notes for the person reading it. */
export function proposeCkanDataset(found: Found, options: { name?: string; primaryKey?: string; eventTime?: string }): { definition: Record<string, unknown>; notes: string[] } {
  const notes: string[] = [];
  const columns: { name: string; type: ColumnType }[] = [];
  const unnamed: string[] = [];
  const untyped: string[] = [];
  for (const f of found.fields) {
    if (f.id.startsWith('_')) continue; // _id, _full_text: CKAN's own
    const type = TYPE_OF[f.type.toLowerCase()] ?? (f.type.startsWith('_') ? 'json' : undefined);
    if (!type) untyped.push(`${f.id} (${f.type})`);
    else if (!COLUMN_NAME.test(f.id)) unnamed.push(f.id);
    else columns.push({ name: f.id, type });
  }
  if (unnamed.length) notes.push(`left out ${unnamed.join(', ')}: not lower-case SQL identifiers, which column names must be (a CKAN source reads fields by name)`);
  if (untyped.length) notes.push(`left out ${untyped.join(', ')}: DataStore types with no column type`);
  if (!columns.length) throw new UsageError(`resource ${found.resourceId} has no field usable as a column${notes.length ? ` (${notes.join('; ')})` : ''}`);
  const timestamps = columns.filter((c) => c.type === 'floating_timestamp' || c.type === 'fixed_timestamp').map((c) => c.name);
  const eventTime = options.eventTime ?? (timestamps.length === 1 ? timestamps[0] : undefined);
  if (!eventTime) {
    throw new UsageError(
      timestamps.length
        ? `which timestamp is the event time? Pass --event-time with one of ${timestamps.join(', ')}`
        : `resource ${found.resourceId} has no timestamp or date field usable as the event time, which every dataset needs`,
    );
  }
  const keys = columns.filter((c) => c.type === 'text' || c.type === 'integer').map((c) => c.name);
  // _id is not a key: CKAN renumbers it when the resource is loaded again.
  const primaryKey = options.primaryKey ?? (keys.filter((k) => /(^id$|_id$|^code$|identifier)/.test(k)).length === 1 ? keys.find((k) => /(^id$|_id$|^code$|identifier)/.test(k)) : undefined);
  if (!primaryKey) {
    throw new UsageError(`which field identifies a row? CKAN's _id does not (it is renumbered when the resource is loaded again); pass --primary-key with a unique field, one of ${columns.map((c) => c.name).join(', ')}`);
  }
  notes.push(`primary key: ${primaryKey}${options.primaryKey ? '' : ' (its name looks like an identifier; check that it is unique)'}; event time: ${eventTime}`);
  const slug = (options.name ?? found.title ?? `ckan-${found.resourceId}`).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 42).replace(/-+$/, '');
  const definition = {
    $schema: './dataset.schema.json',
    name: slug.length >= 3 && /^[a-z]/.test(slug) ? slug : `ckan-${slug}`.slice(0, 42),
    description: `CKAN DataStore resource ${found.resourceId}${found.title ? ` (${found.title})` : ''}`,
    source: { type: 'ckan', url: `${found.actionBase}/datastore_search?resource_id=${found.resourceId}` },
    primaryKey,
    eventTimeColumn: eventTime,
    columns,
  };
  return { definition, notes };
}

/** `add` for a CKAN target; the same options and exit codes as for a Socrata dataset. */
export async function addCkanDataset(argv: string[], deps: DatasetCommandDeps): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      resource: { type: 'string' },
      'primary-key': { type: 'string' },
      'event-time': { type: 'string' },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'out-dir': { type: 'string' },
    },
  });
  const found = await find(positionals[0]!, values.resource, deps);
  const { definition, notes } = proposeCkanDataset(found, {
    ...(values.name ? { name: values.name } : {}),
    ...(values['primary-key'] ? { primaryKey: values['primary-key'] } : {}),
    ...(values['event-time'] ? { eventTime: values['event-time'] } : {}),
  });
  parseDataset(definition, `proposed for CKAN resource ${found.resourceId}`);
  const text = `${JSON.stringify(definition, null, 2)}\n`;
  if (values['dry-run']) {
    deps.stdout(text);
    for (const note of notes) deps.stderr(`  ${note}\n`);
    return 0;
  }
  const dir = path.resolve(values['out-dir'] ?? path.join(deps.repoRoot, 'datasets'));
  const file = path.join(dir, `${String(definition.name)}.json`);
  if (existsSync(file) && !values.force) throw new UsageError(`${file} already exists: pass --force to overwrite it, or --name <another-name>`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  deps.stdout(`wrote ${file}: CKAN resource ${found.resourceId}, ${(definition.columns as unknown[]).length} columns\n`);
  for (const note of notes) deps.stdout(`  ${note}\n`);
  return 0;
}
