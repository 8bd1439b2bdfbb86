/**
 * `npm run query -- [--data-dir D] [--json] "<SQL>"`: SQL on the local catalog (schemas raw and
 * curated; tables named after the dataset with dashes as underscores; marts as <table>__<mart>).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCatalogPath, queryCatalog } from '../containers/transform/src/catalog';
import { formatTable } from './text-table';

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: { 'data-dir': { type: 'string', default: '.local-data' }, json: { type: 'boolean', default: false } } });
  } catch (err) {
    process.stderr.write(`query: ${(err as Error).message}\n`);
    return 2;
  }
  const sql = args.positionals.join(' ').trim();
  if (!sql) {
    process.stderr.write('usage: npm run query -- [--data-dir D] [--json] "<SQL>"   e.g. "SELECT count(*) FROM curated.sf_fire_incidents"\n');
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
