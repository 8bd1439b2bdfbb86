/**
 * `npm run query -- [--data-dir D] [--json] "<SQL>"`: SQL on the local catalog (schemas raw and
 * curated; tables named after the dataset with dashes as underscores; marts as <table>__<mart>).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCatalogPath, queryCatalog } from '../containers/transform/src/catalog';
import { builtBy, openLocalAthena, queryAthena } from './local-engine';
import { formatTable } from './text-table';
import { trinoMissing } from './trino-server';

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

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'data-dir': { type: 'string', default: '.local-data' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (err) {
    process.stderr.write(`query: ${(err as Error).message.split('\n')[0]} (npm run query -- --help)\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sql = args.positionals.join(' ').trim();
  if (!sql) {
    process.stderr.write(`query: no SQL given\n\n${USAGE}\n`);
    return 2;
  }
  const dataDir = path.resolve(args.values['data-dir']!);
  try {
    const { columns, rows } = builtBy(dataDir) === 'athena' ? await viaAthena(dataDir, sql) : await queryCatalog(defaultCatalogPath(dataDir), sql);
    process.stdout.write(args.values.json ? `${JSON.stringify(rows)}\n` : `${formatTable(columns, rows)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`query: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
