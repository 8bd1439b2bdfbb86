/**
 * Which names a dataset may give its columns and tables. Every query the pipeline generates
 * quotes its identifiers, but data-test expressions and mart SQL name columns unquoted, and Glue
 * keeps column names as given; a name one of the two engines cannot take unquoted would make a
 * dataset that validates yet fails after fetching. So those names are refused where they are
 * declared.
 */

/** Glue's limit on column and table names (the Glue API's `Column.Name`, 1-255 characters). */
export const MAX_NAME_LENGTH = 255;

/**
 * Reserved words of Trino's SELECT grammar (the Athena engine v3 list, "Reserved keywords in SQL
 * SELECT statements"): unquoted, they are a syntax error in Athena queries.
 */
const TRINO_RESERVED = [
  'alter', 'and', 'as', 'between', 'by', 'case', 'cast', 'constraint', 'create', 'cross', 'cube',
  'current_catalog', 'current_date', 'current_path', 'current_role', 'current_schema', 'current_time',
  'current_timestamp', 'current_user', 'deallocate', 'delete', 'describe', 'distinct', 'drop', 'else',
  'end', 'escape', 'except', 'execute', 'exists', 'extract', 'false', 'for', 'from', 'full', 'group',
  'grouping', 'having', 'in', 'inner', 'insert', 'intersect', 'into', 'is', 'join', 'json_array',
  'json_exists', 'json_object', 'json_query', 'json_table', 'json_value', 'left', 'like', 'listagg',
  'localtime', 'localtimestamp', 'natural', 'normalize', 'not', 'null', 'on', 'or', 'order', 'outer',
  'prepare', 'recursive', 'right', 'rollup', 'select', 'skip', 'table', 'then', 'trim', 'true',
  'uescape', 'union', 'unnest', 'using', 'values', 'when', 'where', 'with',
];

/**
 * DuckDB's reserved keywords, as listed by DuckDB 1.5 itself:
 * `SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'`.
 */
const DUCKDB_RESERVED = [
  'all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'both', 'case', 'cast',
  'check', 'collate', 'column', 'constraint', 'create', 'default', 'deferrable', 'desc', 'describe',
  'distinct', 'do', 'else', 'end', 'except', 'false', 'fetch', 'for', 'foreign', 'from', 'group',
  'having', 'in', 'initially', 'intersect', 'into', 'lambda', 'lateral', 'leading', 'limit', 'not',
  'null', 'offset', 'on', 'only', 'or', 'order', 'pivot', 'pivot_longer', 'pivot_wider', 'placing',
  'primary', 'qualify', 'references', 'returning', 'select', 'show', 'some', 'summarize', 'symmetric',
  'table', 'then', 'to', 'trailing', 'true', 'union', 'unique', 'unpivot', 'using', 'variadic', 'when',
  'where', 'window', 'with',
];

/** Words neither engine takes as an unquoted column or table name. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([...TRINO_RESERVED, ...DUCKDB_RESERVED]);

/** Which engine(s) reserve a word, for error messages. */
export function reservedBy(word: string): string | undefined {
  const w = word.toLowerCase();
  const engines = [TRINO_RESERVED.includes(w) ? 'Athena (Trino)' : '', DUCKDB_RESERVED.includes(w) ? 'DuckDB' : ''].filter(Boolean);
  return engines.length ? engines.join(' and ') : undefined;
}

/**
 * A string literal in SQL and in SoQL, which quote alike (`'` doubled). The one quoting function:
 * the transform's SQL (dialect.ts `literal`) and the fetcher's SoQL (keyset.ts `soqlString`).
 */
export const stringLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`;
