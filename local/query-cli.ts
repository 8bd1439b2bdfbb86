/**
 * `npm run query -- [--data-dir D] [--json] "<SQL>"`: SQL on the local catalog (schemas raw and
 * curated; tables named after the dataset with dashes as underscores; marts as <table>__<mart>).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCatalogPath, queryCatalog } from '../containers/transform/src/catalog';

function formatTable(columns: string[], rows: Record<string, unknown>[]): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]): string => vals.map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!))).join(' | ');
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map((r) => line(columns.map((c) => cell(r[c])))), `(${rows.length} row${rows.length === 1 ? '' : 's'})`].join('\n');
}

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
