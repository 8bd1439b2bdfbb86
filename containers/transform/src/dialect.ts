/**
 * The only place where DuckDB and Athena (Trino) SQL differ. Staging, marts and data tests are
 * written once against this interface; each engine picks its dialect.
 */
import type { ColumnType } from '../../../runtime/dataset-config';

export type CuratedType = 'VARCHAR' | 'DOUBLE' | 'BIGINT' | 'TIMESTAMP' | 'BOOLEAN';

export interface Dialect {
  readonly name: 'duckdb' | 'athena';
  /** Column type name in DDL / casts. */
  typeName(type: CuratedType): string;
  /** Cast a VARCHAR expression; a value that does not parse becomes NULL (never an error). */
  tryCast(expr: string, type: CuratedType): string;
  /** Continuous percentile aggregate of a numeric expression (exact in DuckDB, approximate in Athena). */
  percentile(expr: string, fraction: number): string;
  /** Year of a timestamp as an integer. */
  year(expr: string): string;
  /** A raw point column (JSON in DuckDB's reader, a struct in the Glue raw table) as GeoJSON text. */
  pointText(expr: string): string;
}

/** Quote an identifier the same way in both dialects (double quotes, doubled inside). */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A SQL string literal (single quotes doubled). */
export const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;

export const duckdbDialect: Dialect = {
  name: 'duckdb',
  typeName: (t) => t,
  tryCast: (expr, t) => `TRY_CAST(${expr} AS ${t})`,
  percentile: (expr, f) => `quantile_cont(${expr}, ${f})`,
  year: (expr) => `CAST(year(${expr}) AS INTEGER)`,
  pointText: (expr) => `CAST(${expr} AS VARCHAR)`,
};

const trinoTypes: Record<CuratedType, string> = {
  VARCHAR: 'varchar',
  DOUBLE: 'double',
  BIGINT: 'bigint',
  // Iceberg on Athena stores microsecond timestamps.
  TIMESTAMP: 'timestamp(6)',
  BOOLEAN: 'boolean',
};

export const athenaDialect: Dialect = {
  name: 'athena',
  typeName: (t) => trinoTypes[t],
  tryCast: (expr, t) =>
    t === 'TIMESTAMP'
      ? // Socrata floating timestamps have no zone ("2023-06-04T14:16:36.000"); :updated_at ends in Z.
        // from_iso8601_timestamp reads both (no zone = the session zone, UTC on Athena).
        `TRY(CAST(from_iso8601_timestamp(${expr}) AS timestamp(6)))`
      : `TRY_CAST(${expr} AS ${trinoTypes[t]})`,
  percentile: (expr, f) => `approx_percentile(${expr}, ${f})`,
  year: (expr) => `CAST(year(${expr}) AS integer)`,
  pointText: (expr) => `json_format(CAST(${expr} AS json))`,
};

export function dialectFor(engine: 'duckdb' | 'athena'): Dialect {
  return engine === 'duckdb' ? duckdbDialect : athenaDialect;
}

/** Curated type of a declared column type (point columns keep their GeoJSON as text). */
export function curatedTypeOf(type: ColumnType): CuratedType {
  switch (type) {
    case 'text':
    case 'point':
      return 'VARCHAR';
    case 'number':
      return 'DOUBLE';
    case 'integer':
      return 'BIGINT';
    case 'floating_timestamp':
      return 'TIMESTAMP';
    case 'checkbox':
      return 'BOOLEAN';
  }
}
