/**
 * `npm run query -- [--data-dir D] [--json] "<SQL>"`: SQL on the local catalog (schemas raw and
 * curated; tables named after the dataset with dashes as underscores; marts as <table>__<mart>).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCatalogPath, queryCatalog } from '../containers/transform/src/catalog';
import { formatTable } from './text-table';

const USAGE = `usage: npm run query -- [options] "<SQL>"

SQL on the local catalog that \`npm run local\` leaves (DuckDB): schemas raw and curated, tables named
after the dataset with dashes as underscores, marts as <table>__<mart>.
  e.g. npm run query -- "SELECT count(*) FROM curated.sf_fire_incidents"

Options:
  --data-dir <dir>   the data directory of the run (default .local-data)
  --json             the rows as one JSON array instead of a table
  -h, --help         this text`;

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
  try {
    const { columns, rows } = await queryCatalog(defaultCatalogPath(path.resolve(args.values['data-dir']!)), sql);
    process.stdout.write(args.values.json ? `${JSON.stringify(rows)}\n` : `${formatTable(columns, rows)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`query: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
