/**
 * Data tests as SQL: each query returns one row with `failing` = the number of rows (or groups)
 * that break the rule. Every dataset gets not-null + unique on its primary key; the dataset JSON
 * adds its own (`dataTests`), mart files add theirs (`-- tests:`). Reconciliation against the raw
 * zone is engine-specific and run by the transform itself.
 */
import type { DataTestConfig, DatasetConfig } from '../../../runtime/dataset-config';
import { ident, literal } from './dialect';
import type { MartTest } from './models';

export interface DataTestQuery {
  name: string;
  severity: 'error' | 'warn';
  /** 'curated' or a mart name. */
  model: string;
  description: string;
  sql: string;
}

export interface DataTestResult {
  name: string;
  severity: 'error' | 'warn';
  model: string;
  description: string;
  status: 'pass' | 'fail';
  failing: number;
}

function defaultName(t: DataTestConfig | MartTest): string {
  if (t.name) return t.name;
  if (t.kind === 'unique') return `unique_${t.columns.join('_')}`;
  if (t.kind === 'expression') return t.name;
  return `${t.kind}_${t.column}`;
}

/** The query for one declared test over `table` (an already-qualified reference). */
export function testQuery(t: DataTestConfig | MartTest, model: string, table: string): DataTestQuery {
  const prefix = model === 'curated' ? '' : `${model}.`;
  const base = { name: prefix + defaultName(t), severity: t.severity, model };
  switch (t.kind) {
    case 'not_null':
      return { ...base, description: `${t.column} is never null`, sql: `SELECT count(*) AS failing FROM ${table} WHERE ${ident(t.column)} IS NULL` };
    case 'range': {
      const conds = [
        ...(t.min !== undefined ? [`${ident(t.column)} < ${t.min}`] : []),
        ...(t.max !== undefined ? [`${ident(t.column)} > ${t.max}`] : []),
      ];
      const where = conds.length ? conds.join(' OR ') : 'FALSE';
      return {
        ...base,
        description: `${t.column} within [${t.min ?? '-inf'}, ${t.max ?? '+inf'}] (null passes)`,
        sql: `SELECT count(*) AS failing FROM ${table} WHERE ${where}`,
      };
    }
    case 'accepted_values':
      return {
        ...base,
        description: `${t.column} in (${t.values.join(', ')}) (null passes)`,
        // Compared as text: Trino refuses a bigint or boolean IN a list of strings (DuckDB casts).
        sql: `SELECT count(*) AS failing FROM ${table} WHERE ${ident(t.column)} IS NOT NULL AND CAST(${ident(t.column)} AS VARCHAR) NOT IN (${t.values.map(literal).join(', ')})`,
      };
    case 'expression':
      return {
        ...base,
        description: `${t.expression} holds for every row (null passes)`,
        sql: `SELECT count(*) AS failing FROM ${table} WHERE NOT (${t.expression})`,
      };
    case 'unique': {
      const cols = t.columns.map(ident).join(', ');
      return {
        ...base,
        description: `one row per (${t.columns.join(', ')})`,
        sql: `SELECT count(*) AS failing FROM (SELECT ${cols} FROM ${table} GROUP BY ${cols} HAVING count(*) > 1) AS duplicates`,
      };
    }
  }
}

/** Tests on the curated table: primary key not-null + unique (error), then the dataset's own. */
export function curatedTests(dataset: DatasetConfig, table: string): DataTestQuery[] {
  const pk = dataset.primaryKey;
  const automatic: MartTest[] = [
    { kind: 'not_null', name: `primary_key_not_null_${pk}`, column: pk, severity: 'error' },
    { kind: 'unique', name: `primary_key_unique_${pk}`, columns: [pk], severity: 'error' },
  ];
  return [...automatic, ...dataset.dataTests].map((t) => testQuery(t, 'curated', table));
}
