/**
 * `npm run query -- [--data-dir D] [--json] "<SQL>"`: SQL on the local catalog (schemas raw and
 * curated; tables named after the dataset with dashes as underscores; marts as <table>__<mart>).
 */
import path from 'node:path';
import { defaultCatalogPath, queryCatalog } from '../containers/transform/src/catalog';
import { builtBy, openLocalAthena, queryAthena } from './local-engine';
import { formatTable } from './text-table';
import { trinoMissing } from './trino-server';
import { commandArgs } from './cli-usage';

const USAGE = `usage: npm run query -- [options] "<SQL>"

SQL on the local catalog that \`npm run local\` leaves: schemas raw and curated, tables named after
the dataset with dashes as underscores, marts as <table>__<mart>. The engine that built the data
directory answers: DuckDB, or (--engine athena) Athena SQL on the local Trino.
  e.g. npm run query -- "SELECT count(*) FROM curated.sf_fire_incidents"

Options:
  --data-dir <dir>   the data directory of the run (default .local-data)
  --json             the rows as one JSON array instead of a table
  -h, --help         this text`;

/** A data directory built by `--engine athena`: the SQL goes to the local Athena endpoint (Trino). */
async function viaAthena(dataDir: string, sql: string): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
  const missing = trinoMissing();
  if (missing) throw new Error(`${dataDir} was built by the athena engine, which needs Trino: ${missing}`);
  const athena = await openLocalAthena(dataDir, undefined);
  try {
    return await queryAthena(athena, sql);
  } finally {
    await athena.close();
  }
}

/** The tables of the local catalog, one per line, or why they could not be listed. */
async function tablesLines(ask: (sql: string) => Promise<{ rows: Record<string, unknown>[] }>, dataDir: string): Promise<string> {
  try {
    const { rows } = await ask(
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('raw', 'curated') ORDER BY table_schema DESC, table_name",
    );
    if (!rows.length) return `no tables in ${dataDir} yet: run \`npm run local -- --data-dir ${dataDir}\` first`;
    return [`tables in ${dataDir}:`, ...rows.map((r) => `  ${String(r.table_schema)}.${String(r.table_name)}`)].join('\n');
  } catch (err) {
    return `(the tables could not be listed: ${(err as Error).message.split('\n')[0]})`;
  }
}

async function main(argv: string[]): Promise<number> {
  // As in cli.ts: the SDK's Node 20 notice would precede every answer of a data directory built by athena.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options = { 'data-dir': { type: 'string', default: '.local-data' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } as const;
  const args = commandArgs('query', USAGE, { args: argv, allowPositionals: true, options });
  if (typeof args === 'number') return args;
  const sql = args.positionals.join(' ').trim();
  if (!sql) {
    process.stderr.write('query: no SQL given (npm run query -- --help)\n');
    return 2;
  }
  const dataDir = path.resolve(args.values['data-dir']);
  const athena = builtBy(dataDir) === 'athena';
  const ask = (q: string) => (athena ? viaAthena(dataDir, q) : queryCatalog(defaultCatalogPath(dataDir), q));
  try {
    const { columns, rows } = await ask(sql);
    process.stdout.write(args.values.json ? `${JSON.stringify(rows)}\n` : `${formatTable(columns, rows)}\n`);
    return 0;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    process.stderr.write(`query: ${message}\n`);
    // A table that is not there (DuckDB: "Table with name x does not exist", Trino: "Table 'x' does not exist"): say which are.
    if (/Table\b.*\bdoes not exist/i.test(message)) process.stderr.write(`${await tablesLines(ask, dataDir)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
