/**
 * The only place where DuckDB and Athena (Trino) SQL differ. Staging, marts and data tests are
 * written once against this interface; each engine picks its dialect.
 */
import type { ColumnType } from '../../../runtime/dataset-config';
import { stringLiteral } from '../../../runtime/sql-names';

export type CuratedType = 'VARCHAR' | 'DOUBLE' | 'BIGINT' | 'TIMESTAMP' | 'BOOLEAN';

export interface Dialect {
  readonly name: 'duckdb' | 'athena';
  /** Column type name in DDL / casts. */
  typeName(type: CuratedType): string;
  /**
   * Cast a VARCHAR expression under the cast contract (CAST_PATTERNS): a value outside it becomes
   * NULL (never an error), and both dialects accept exactly the same strings.
   */
  tryCast(expr: string, type: CuratedType): string;
  /** Continuous percentile aggregate of a numeric expression: exact, with linear interpolation, in both. */
  percentile(expr: string, fraction: number): string;
  /** Year of a timestamp as an integer. */
  year(expr: string): string;
  /** A raw point column (JSON in DuckDB's reader, a struct in the Glue raw table) as GeoJSON text. */
  pointText(expr: string): string;
  /** A timestamp as ISO text with microseconds, the same string in both (the content hash's form). */
  timestampText(expr: string): string;
  /** The MD5 of a text as lower-case hex. */
  md5Hex(text: string): string;
  /** Aggregate: the distinct values of an integer expression as one comma-separated text. */
  distinctList(expr: string): string;
  /** Aggregate: an approximate count of distinct non-null values (HyperLogLog; the engines' estimates differ). */
  approxDistinct(expr: string): string;
  /** The function approxDistinct uses, named where its figures are shown. */
  readonly approxDistinctName: string;
}

/** Quote an identifier the same way in both dialects (double quotes, doubled inside). */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A SQL string literal (single quotes doubled). */
export const literal = stringLiteral;

/**
 * The cast contract (docs/transform.md, "Cast contract"): the strings each non-text curated type
 * accepts, as a regular expression matched against the whole value. Each engine's own cast is
 * laxer and the two disagree (DuckDB rounds "2.5" into an integer and reads "0x10" and "NaN";
 * Trino reads Java's "1d" and "0x1p3" as doubles), so both dialects gate their cast with the same
 * pattern. The patterns use only what RE2 (DuckDB), Joni (Trino) and JavaScript read alike:
 * ASCII character classes, non-capturing groups, bounded repeats.
 */
export const CAST_PATTERNS: Readonly<Record<Exclude<CuratedType, 'VARCHAR'>, string>> = {
  // Optional sign and decimal digits; bigint's range is then enforced by each engine's TRY_CAST.
  BIGINT: '[+-]?[0-9]+',
  // Decimal with optional fraction and exponent (at most 3 exponent digits); no hex, NaN,
  // Infinity, separators or blanks. Overflow to infinity becomes NULL on both engines.
  DOUBLE: '[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?',
  // Socrata's floating timestamp, fraction of at most 3 digits (Athena's from_iso8601_timestamp
  // keeps milliseconds), optionally marked UTC with Z; other offsets are refused because DuckDB
  // would silently drop them while Trino would apply them.
  TIMESTAMP:
    '[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,3})?Z?',
  BOOLEAN: 'true|false',
};

export const duckdbDialect: Dialect = {
  name: 'duckdb',
  typeName: (t) => t,
  tryCast: (expr, t) => {
    if (t === 'VARCHAR') return expr;
    // regexp_full_match anchors at both ends of the whole string (RE2 full match).
    const gate = `regexp_full_match(${expr}, ${literal(CAST_PATTERNS[t])})`;
    // An overflowing "1e400" reads as NULL in a constant but as Infinity from a column: exclude it.
    const finite = t === 'DOUBLE' ? ` AND isfinite(TRY_CAST(${expr} AS DOUBLE))` : '';
    return `(CASE WHEN ${gate}${finite} THEN TRY_CAST(${expr} AS ${t}) END)`;
  },
  percentile: (expr, f) => `quantile_cont(${expr}, ${f})`,
  year: (expr) => `CAST(year(${expr}) AS INTEGER)`,
  pointText: (expr) => `CAST(${expr} AS VARCHAR)`,
  timestampText: (expr) => `strftime(${expr}, '%Y-%m-%dT%H:%M:%S.%f')`,
  md5Hex: (text) => `md5(${text})`,
  distinctList: (expr) => `string_agg(DISTINCT CAST(${expr} AS VARCHAR), ',')`,
  approxDistinct: (expr) => `approx_count_distinct(${expr})`,
  approxDistinctName: 'approx_count_distinct',
};

const trinoTypes: Record<CuratedType, string> = {
  VARCHAR: 'varchar',
  DOUBLE: 'double',
  BIGINT: 'bigint',
  // Iceberg on Athena stores microsecond timestamps.
  TIMESTAMP: 'timestamp(6)',
  BOOLEAN: 'boolean',
};

/**
 * Trino's regexp_like searches rather than matches, and compiles patterns with Joni in Java syntax,
 * where `$` also matches before a final line break ("5\n" passes `^[0-9]+$`). `\A`/`\z` anchor
 * at the very start and end of the string in Joni and RE2J alike.
 */
const trinoFullMatch = (expr: string, pattern: string) => `regexp_like(${expr}, ${literal(`\\A(?:${pattern})\\z`)})`;

function athenaTryCast(expr: string, t: CuratedType): string {
  if (t === 'VARCHAR') return expr;
  const gate = trinoFullMatch(expr, CAST_PATTERNS[t]);
  switch (t) {
    case 'TIMESTAMP': {
      // The value is read as UTC whether or not it ends in Z (appending Z when absent), so the
      // session time zone never shifts a floating timestamp; dropping the (UTC) zone then keeps
      // the wall-clock value, exactly what DuckDB's cast yields. TRY turns Feb 30 into NULL.
      const utc = `(CASE WHEN substr(${expr}, length(${expr})) = 'Z' THEN ${expr} ELSE concat(${expr}, 'Z') END)`;
      return `(CASE WHEN ${gate} THEN TRY(CAST(from_iso8601_timestamp(${utc}) AS timestamp(6))) END)`;
    }
    case 'DOUBLE':
      // Java's parser turns an overflowing "1e400" into Infinity: NULL, as in DuckDB.
      return `(CASE WHEN ${gate} AND is_finite(TRY_CAST(${expr} AS double)) THEN TRY_CAST(${expr} AS double) END)`;
    default:
      return `(CASE WHEN ${gate} THEN TRY_CAST(${expr} AS ${trinoTypes[t]}) END)`;
  }
}

/**
 * Exact continuous percentile in Trino SQL, computed as DuckDB's quantile_cont computes it: over
 * the sorted non-NULL values v[0..n-1], at rank r = (n - 1) * f, v[floor r] + (v[ceil r] -
 * v[floor r]) * (r - floor r), written lo * (1 - d) + hi * d as DuckDB evaluates it. Athena's approx_percentile would answer other numbers than the
 * local run for the same data (a quantile digest); the sorted array is bound to `a` by a
 * one-element transform, since Trino has no LET. DuckDB interpolates as lo * (1 - d) + hi * d
 * (checked to the last bit on random groups: test/transform/percentile-trino.test.ts).
 */
function exactPercentile(expr: string, f: number): string {
  // In double arithmetic, as DuckDB computes it (a bare 0.99 would be an exact DECIMAL in Trino).
  const r = `((cardinality(a) - 1) * CAST(${f} AS double))`;
  const d = `(${r} - floor(${r}))`;
  const at = (i: string): string => `a[CAST(${i} AS bigint) + 1]`;
  return (
    `element_at(transform(ARRAY[array_sort(array_agg(CAST(${expr} AS double)) FILTER (WHERE ${expr} IS NOT NULL))], ` +
    `a -> CASE WHEN a IS NULL OR cardinality(a) = 0 THEN NULL ELSE ${at(`floor(${r})`)} * (1 - ${d}) + ${at(`ceil(${r})`)} * ${d} END), 1)`
  );
}

export const athenaDialect: Dialect = {
  name: 'athena',
  typeName: (t) => trinoTypes[t],
  tryCast: athenaTryCast,
  percentile: exactPercentile,
  year: (expr) => `CAST(year(${expr}) AS integer)`,
  pointText: (expr) => `json_format(CAST(${expr} AS json))`,
  timestampText: (expr) => `to_iso8601(CAST(${expr} AS timestamp(6)))`,
  md5Hex: (text) => `lower(to_hex(md5(to_utf8(${text}))))`,
  distinctList: (expr) => `array_join(array_sort(array_agg(DISTINCT ${expr})), ',')`,
  approxDistinct: (expr) => `approx_distinct(${expr})`,
  approxDistinctName: 'approx_distinct',
};

export function dialectFor(engine: 'duckdb' | 'athena'): Dialect {
  return engine === 'duckdb' ? duckdbDialect : athenaDialect;
}

/**
 * Curated type of a declared column type. Point, geometry and json columns keep their JSON as
 * text; a fixed timestamp passes the same gate as a floating one (Socrata serves it in UTC, with
 * a Z), so both become the UTC wall-clock TIMESTAMP.
 */
export function curatedTypeOf(type: ColumnType): CuratedType {
  switch (type) {
    case 'text':
    case 'point':
    case 'geometry':
    case 'json':
      return 'VARCHAR';
    case 'number':
      return 'DOUBLE';
    case 'integer':
      return 'BIGINT';
    case 'floating_timestamp':
    case 'fixed_timestamp':
      return 'TIMESTAMP';
    case 'checkbox':
      return 'BOOLEAN';
  }
}
