/**
 * A profile of curated's declared columns (nulls, distinct values, smallest and largest), for the
 * report of a dataset without marts: the first look a person takes at a new dataset. One query,
 * one scan, on either engine; distinct counts are the engine's HyperLogLog estimate
 * (approx_count_distinct on DuckDB, approx_distinct on Athena), so they are approximate and
 * differ a little between engines.
 */
import { pointFieldNamesOf, type DatasetConfig } from '../../../runtime/dataset-config';
import type { CuratedType, Dialect } from './dialect';
import { ident } from './dialect';
import { plainValue, type Row } from './engine';
import { curatedColumns } from './staging';

export interface ColumnProfile {
  column: string;
  type: CuratedType;
  nulls: number;
  /** Approximate (see ColumnProfiles.distinctFunction). */
  distinct: number;
  /** Smallest and largest value (timestamps as ISO text, booleans as booleans); null without values or for JSON columns. */
  min: string | number | boolean | null;
  max: string | number | boolean | null;
}

export interface ColumnProfiles {
  rows: number;
  /** The engine's approximate distinct count function. */
  distinctFunction: string;
  columns: ColumnProfile[];
}

/** Curated's declared columns (point columns with their longitude/latitude), without the pipeline's own. */
function profiledColumns(dataset: DatasetConfig): { name: string; type: CuratedType; ordered: boolean }[] {
  const pointColumns = dataset.columns.filter((c) => c.type === 'point');
  const wanted = new Set([...dataset.columns.map((c) => c.name), ...pointColumns.flatMap((c) => Object.values(pointFieldNamesOf(c)))]);
  const points = new Set(pointColumns.map((c) => c.name));
  return curatedColumns(dataset)
    .filter((c) => wanted.has(c.name))
    // A point is GeoJSON text: its smallest and largest text mean nothing.
    .map((c) => ({ name: c.name, type: c.type, ordered: !points.has(c.name) }));
}

const alias = (i: number, what: string): string => `c${i}_${what}`;

/** The profile query: one row, `n` and per column `c<i>_nulls`, `c<i>_distinct`, `c<i>_min`, `c<i>_max`. */
export function columnProfileSql(dataset: DatasetConfig, dialect: Dialect, table: string): string {
  const parts = ['count(*) AS n'];
  profiledColumns(dataset).forEach((c, i) => {
    const col = ident(c.name);
    parts.push(`count(*) - count(${col}) AS ${alias(i, 'nulls')}`, `${dialect.approxDistinct(col)} AS ${alias(i, 'distinct')}`);
    if (!c.ordered) return;
    // Timestamps as the same ISO text on both engines; booleans ordered as 0/1.
    const bound = (fn: 'min' | 'max'): string =>
      c.type === 'TIMESTAMP' ? dialect.timestampText(`${fn}(${col})`) : c.type === 'BOOLEAN' ? `${fn}(CAST(${col} AS INTEGER))` : `${fn}(${col})`;
    parts.push(`${bound('min')} AS ${alias(i, 'min')}`, `${bound('max')} AS ${alias(i, 'max')}`);
  });
  return `SELECT ${parts.join(', ')} FROM ${table}`;
}

function bound(v: unknown, type: CuratedType): ColumnProfile['min'] {
  const p = plainValue(v);
  if (p === null || p === undefined) return null;
  if (type === 'BOOLEAN') return Number(p) === 1;
  if (type === 'DOUBLE' || type === 'BIGINT') return Number(p);
  return String(p);
}

/** The profile from the query's row. */
export function columnProfiles(dataset: DatasetConfig, dialect: Dialect, row: Row): ColumnProfiles {
  return {
    rows: Number(plainValue(row.n) ?? 0),
    distinctFunction: dialect.approxDistinctName,
    columns: profiledColumns(dataset).map((c, i) => ({
      column: c.name,
      type: c.type,
      nulls: Number(plainValue(row[alias(i, 'nulls')]) ?? 0),
      distinct: Number(plainValue(row[alias(i, 'distinct')]) ?? 0),
      min: bound(row[alias(i, 'min')], c.type),
      max: bound(row[alias(i, 'max')], c.type),
    })),
  };
}

/** Profile curated on an engine (one query). */
export async function profileCurated(engine: { dataset: DatasetConfig; dialect: Dialect; rows(sql: string, label?: string): Promise<Row[]>; tableRef(model: string): string }): Promise<ColumnProfiles> {
  const [row = {}] = await engine.rows(columnProfileSql(engine.dataset, engine.dialect, engine.tableRef('curated')), 'column profile');
  return columnProfiles(engine.dataset, engine.dialect, row);
}
