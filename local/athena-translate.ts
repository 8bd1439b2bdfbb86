/**
 * Athena engine v3 statements → Trino 476 statements, for the local Athena endpoint.
 *
 * Athena v3 is Trino underneath, so a statement passes through VERBATIM unless it is one of the
 * Athena-only forms in ATHENA_TRANSLATIONS (Hive DDL with backticks, Athena's Iceberg CTAS
 * properties, OPTIMIZE, VACUUM). Nothing else is "fixed": a statement Athena rejects reaches Trino
 * unchanged and fails there too. A form that matches a rule's first words but not its grammar is
 * passed through unchanged as well, for Trino to reject.
 */

export interface TranslationRule {
  id: string;
  athena: string;
  trino: string;
  /** Whether the statement must name the `iceberg` catalog (else the hive catalog's redirection reaches Iceberg tables). */
  icebergCatalog: boolean;
  notes: string;
  athenaDoc: string;
  trinoDoc: string;
}

/** Every rule, the single table docs/athena-local.md mirrors. */
export const ATHENA_TRANSLATIONS: readonly TranslationRule[] = [
  {
    id: 'drop-table',
    athena: 'DROP TABLE [IF EXISTS] `db`.`t`',
    trino: 'DROP TABLE [IF EXISTS] "db"."t"',
    icebergCatalog: false,
    notes: 'Hive DDL quotes identifiers with backticks; Trino with double quotes. Redirection drops Iceberg tables too.',
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/drop-table.html',
    trinoDoc: 'https://trino.io/docs/476/sql/drop-table.html',
  },
  {
    id: 'rename-table',
    athena: 'ALTER TABLE `db`.`a` RENAME TO `db`.`b`',
    trino: 'ALTER TABLE "db"."a" RENAME TO "db"."b"',
    icebergCatalog: false,
    notes:
      'Backticks to double quotes. The target must not name the hive catalog when the source is an Iceberg table (Trino: "Table rename across catalogs is not supported"); an unqualified or db-qualified target works.',
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-alter-table-rename.html',
    trinoDoc: 'https://trino.io/docs/476/sql/alter-table.html',
  },
  {
    id: 'add-columns',
    athena: 'ALTER TABLE t ADD COLUMNS (`c` string, `d` timestamp, ...)',
    trino: 'ALTER TABLE t ADD COLUMN "c" varchar; ALTER TABLE t ADD COLUMN "d" timestamp(6); ... (one statement per column, in order)',
    icebergCatalog: false,
    notes:
      'Hive types mapped: string→varchar, int→integer, float→real, binary→varbinary, timestamp→timestamp(6) (Iceberg stores microseconds; Trino refuses timestamp(3) there), array<T>→array(T), map<K,V>→map(K,V), struct<a:T>→row(a T). Not atomic: a failure leaves the earlier columns added.',
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-alter-table-add-columns.html',
    trinoDoc: 'https://trino.io/docs/476/sql/alter-table.html',
  },
  {
    id: 'create-external-table',
    athena:
      "CREATE EXTERNAL TABLE [IF NOT EXISTS] t (`key` string, ...) ROW FORMAT DELIMITED [FIELDS TERMINATED BY 'c'] [ESCAPED BY 'e'] [LINES TERMINATED BY '\\n'] STORED AS TEXTFILE LOCATION 'loc'",
    trino: "CREATE TABLE [IF NOT EXISTS] t (\"key\" varchar, ...) WITH (format = 'TEXTFILE', external_location = 'loc' [, textfile_field_separator = 'c'] [, textfile_field_separator_escape = 'e'])",
    icebergCatalog: false,
    notes:
      'Hive catalog (needs hive.non-managed-table-writes-enabled only for writes). Only ROW FORMAT DELIMITED ... STORED AS TEXTFILE; other SerDes, PARTITIONED BY and TBLPROPERTIES are not translated (Trino rejects them). Hive types mapped as in add-columns, but timestamp stays timestamp (Hive text tables hold milliseconds).',
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/create-table.html',
    trinoDoc: 'https://trino.io/docs/476/connector/hive.html#table-properties',
  },
  {
    id: 'iceberg-ctas',
    athena:
      "CREATE TABLE t WITH (table_type = 'ICEBERG', is_external = false, location = 'loc', partitioning = ARRAY['year(c)'], format = 'PARQUET', write_compression = 'ZSTD') AS SELECT ... [WITH [NO] DATA]",
    trino: "CREATE TABLE iceberg.db.t WITH (location = 'loc', partitioning = ARRAY['year(c)'], format = 'PARQUET') AS SELECT ... [WITH [NO] DATA], with session property iceberg.compression_codec = 'ZSTD'",
    icebergCatalog: true,
    notes:
      "A hive-catalog CTAS creates a Hive table whatever its properties, so the table is named in the iceberg catalog (db from the statement, else QueryExecutionContext.Database). table_type and is_external = false dropped (is_external = true is left for Trino to reject, as Athena does). write_compression has no Trino table property: it becomes the iceberg.compression_codec session property for this statement (the data the CTAS writes). Athena's optimize_rewrite_*, vacuum_* and compression_level properties are dropped: Trino's Iceberg connector cannot store them (extra_properties refuses those keys); the endpoint's vacuumMaxSnapshotAgeSeconds option stands for vacuum_max_snapshot_age_seconds. Any other property reaches Trino unchanged.",
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/create-table-as.html#ctas-table-properties',
    trinoDoc: 'https://trino.io/docs/476/connector/iceberg.html#table-properties',
  },
  {
    id: 'optimize',
    athena: 'OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE predicate]',
    trino: 'ALTER TABLE t EXECUTE optimize [WHERE predicate]',
    icebergCatalog: false,
    notes: "Trino's optimize is a bin-packing rewrite of files below file_size_threshold (100MB by default); Athena's WHERE also may name partition columns only.",
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/optimize-statement.html',
    trinoDoc: 'https://trino.io/docs/476/connector/iceberg.html#optimize',
  },
  {
    id: 'vacuum',
    athena: 'VACUUM db.`t` (names bare or in backticks; double quotes are refused, as on Athena)',
    trino: "ALTER TABLE t EXECUTE expire_snapshots(retention_threshold => '5d'); ALTER TABLE t EXECUTE remove_orphan_files(retention_threshold => '5d')",
    icebergCatalog: false,
    notes:
      'Athena expires snapshots older than vacuum_max_snapshot_age_seconds (default 432000 s = 5 days) and removes orphan files older than the same age. Trino refuses thresholds below 7 days unless iceberg.expire-snapshots.min-retention / iceberg.remove-orphan-files.min-retention are lowered (local/trino-server.ts sets 0s). vacuum_min_snapshots_to_keep (default 1) has no Trino argument: Trino always keeps the current snapshot.',
    athenaDoc: 'https://docs.aws.amazon.com/athena/latest/ug/vacuum-statement.html',
    trinoDoc: 'https://trino.io/docs/476/connector/iceberg.html#expire-snapshots',
  },
];

export interface TranslateOptions {
  /** QueryExecutionContext.Database, for an unqualified CTAS target (default `default`). */
  database?: string;
  /** Stands for the table property vacuum_max_snapshot_age_seconds (default 432000, Athena's). */
  vacuumMaxSnapshotAgeSeconds?: number;
}

export interface AthenaTranslation {
  statements: string[];
  /** Id of the ATHENA_TRANSLATIONS rule applied; absent when the statement passes verbatim. */
  translation?: string;
  /** Trino session properties the statements need. */
  sessionProperties?: Record<string, string>;
}

export const ATHENA_DEFAULT_VACUUM_MAX_SNAPSHOT_AGE_SECONDS = 432_000;

// ---------------------------------------------------------------------------------------------
// Tokens: enough of the lexical grammar to never look inside a string, identifier or comment.

type TokenKind = 'word' | 'quoted' | 'backtick' | 'string' | 'number' | 'punct' | 'space' | 'comment';
interface Token {
  kind: TokenKind;
  text: string;
  /** Index in the full token list (spaces and comments included). */
  pos: number;
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const re =
    /(\s+)|(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*')|("(?:[^"]|"")*")|(`(?:[^`]|``)*`)|([A-Za-z_][A-Za-z0-9_$@]*)|(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([\s\S])/gy;
  const kinds: TokenKind[] = ['space', 'comment', 'string', 'quoted', 'backtick', 'word', 'number', 'punct'];
  for (let m = re.exec(sql); m; m = re.exec(sql)) {
    const i = m.slice(1).findIndex((g) => g !== undefined);
    tokens.push({ kind: kinds[i]!, text: m[0], pos: tokens.length });
    if (re.lastIndex >= sql.length) break;
  }
  return tokens;
}

const isWord = (t: Token | undefined, word: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === word;
const significant = (tokens: Token[]): Token[] => tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');

/** A backtick identifier in Trino's double-quoted form; other tokens unchanged. */
function trinoText(t: Token): string {
  if (t.kind !== 'backtick') return t.text;
  return `"${t.text.slice(1, -1).replace(/``/g, '`').replace(/"/g, '""')}"`;
}
const render = (tokens: Token[]): string => tokens.map(trinoText).join('');

/** A cursor over significant tokens. */
class Cursor {
  i = 0;
  constructor(
    readonly t: Token[],
    readonly all: Token[] = t,
  ) {}
  peek(offset = 0): Token | undefined {
    return this.t[this.i + offset];
  }
  word(w: string): boolean {
    if (isWord(this.peek(), w)) {
      this.i += 1;
      return true;
    }
    return false;
  }
  words(...ws: string[]): boolean {
    if (ws.every((w, k) => isWord(this.peek(k), w))) {
      this.i += ws.length;
      return true;
    }
    return false;
  }
  punct(p: string): boolean {
    if (this.peek()?.kind === 'punct' && this.peek()?.text === p) {
      this.i += 1;
      return true;
    }
    return false;
  }
  done(): boolean {
    return this.i >= this.t.length || (this.t.length - this.i === 1 && this.peek()?.text === ';');
  }
  /** A dotted name of 1-3 identifier parts. */
  name(): Token[] | undefined {
    const parts: Token[] = [];
    for (;;) {
      const t = this.peek();
      if (!t || !['word', 'quoted', 'backtick'].includes(t.kind)) return undefined;
      parts.push(t);
      this.i += 1;
      if (!(this.peek()?.text === '.' && this.peek()?.kind === 'punct')) break;
      this.i += 1;
    }
    return parts.length <= 3 ? parts : undefined;
  }
  /** Tokens up to the matching close of an already consumed open bracket. */
  balanced(open: string, close: string): Token[] | undefined {
    const out: Token[] = [];
    for (let depth = 1; this.i < this.t.length; this.i += 1) {
      const t = this.t[this.i]!;
      if (t.kind === 'punct' && t.text === open) depth += 1;
      if (t.kind === 'punct' && t.text === close && --depth === 0) {
        this.i += 1;
        return out;
      }
      out.push(t);
    }
    return undefined;
  }
  /** The rest of the statement, spacing kept, without a final `;`. */
  rest(): string {
    const from = this.peek();
    return from ? render(this.all.slice(from.pos)).trim().replace(/;$/, '').trim() : '';
  }
}

const nameText = (parts: Token[]): string => parts.map(trinoText).join('.');

/** The original text from the first to the last of these tokens. */
const span = (all: Token[], ts: Token[]): string => (ts.length ? render(all.slice(ts[0]!.pos, ts[ts.length - 1]!.pos + 1)) : '');

/** Split tokens at top-level commas. */
function splitTopLevel(tokens: Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'punct' && '([<'.includes(t.text)) depth += 1;
    if (t.kind === 'punct' && ')]>'.includes(t.text)) depth -= 1;
    if (depth === 0 && t.kind === 'punct' && t.text === ',') out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out.filter((p) => p.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Hive types (Athena DDL) → Trino types.

const HIVE_SCALARS: Record<string, string> = {
  STRING: 'varchar',
  INT: 'integer',
  INTEGER: 'integer',
  BIGINT: 'bigint',
  SMALLINT: 'smallint',
  TINYINT: 'tinyint',
  DOUBLE: 'double',
  FLOAT: 'real',
  BOOLEAN: 'boolean',
  DATE: 'date',
  BINARY: 'varbinary',
};

/** Render a Hive type (tokens) as a Trino type; undefined when it is not one. */
function hiveType(tokens: Token[], timestamp: string): string | undefined {
  const c = new Cursor(tokens);
  const parse = (): string | undefined => {
    const t = c.peek();
    if (!t || t.kind !== 'word') return undefined;
    c.i += 1;
    const w = t.text.toUpperCase();
    if (HIVE_SCALARS[w]) return HIVE_SCALARS[w];
    if (w === 'TIMESTAMP') return timestamp;
    if (w === 'DECIMAL' || w === 'VARCHAR' || w === 'CHAR') {
      if (!c.punct('(')) return w === 'DECIMAL' ? 'decimal(10,0)' : undefined;
      const args = c.balanced('(', ')');
      return args ? `${w.toLowerCase()}(${args.map((a) => a.text).join('')})` : undefined;
    }
    if (w === 'ARRAY' && c.punct('<')) {
      const el = parse();
      return el && c.punct('>') ? `array(${el})` : undefined;
    }
    if (w === 'MAP' && c.punct('<')) {
      const k = parse();
      if (!k || !c.punct(',')) return undefined;
      const v = parse();
      return v && c.punct('>') ? `map(${k}, ${v})` : undefined;
    }
    if (w === 'STRUCT' && c.punct('<')) {
      const fields: string[] = [];
      do {
        const f = c.peek();
        if (!f || !['word', 'quoted', 'backtick'].includes(f.kind)) return undefined;
        c.i += 1;
        if (!c.punct(':')) return undefined;
        const ft = parse();
        if (!ft) return undefined;
        fields.push(`${f.kind === 'word' ? `"${f.text.toLowerCase()}"` : trinoText(f)} ${ft}`);
      } while (c.punct(','));
      return c.punct('>') ? `row(${fields.join(', ')})` : undefined;
    }
    return undefined;
  };
  const out = parse();
  return out && c.done() ? out : undefined;
}

/** `(col type, ...)` column definitions → Trino `"col" type` list; undefined on anything else. */
function columnDefinitions(tokens: Token[], timestamp: string): string[] | undefined {
  const defs: string[] = [];
  for (const part of splitTopLevel(tokens)) {
    const [nameTok, ...typeToks] = part;
    if (!nameTok || !['word', 'quoted', 'backtick'].includes(nameTok.kind)) return undefined;
    const type = hiveType(typeToks, timestamp);
    if (!type) return undefined;
    defs.push(`${nameTok.kind === 'word' ? `"${nameTok.text.toLowerCase()}"` : trinoText(nameTok)} ${type}`);
  }
  return defs.length ? defs : undefined;
}

// ---------------------------------------------------------------------------------------------
// Rules.

type Rule = (c: Cursor, all: Token[], opts: TranslateOptions) => Omit<AthenaTranslation, 'translation'> | undefined;

const RULES: Record<string, Rule> = {
  'drop-table': (c, all) => {
    if (!c.words('DROP', 'TABLE')) return undefined;
    c.words('IF', 'EXISTS');
    if (!c.name() || !c.done() || !all.some((t) => t.kind === 'backtick')) return undefined;
    return { statements: [render(all).trim().replace(/;$/, '')] };
  },
  'rename-table': (c, all) => {
    if (!c.words('ALTER', 'TABLE') || !c.name() || !c.words('RENAME', 'TO') || !c.name() || !c.done()) return undefined;
    if (!all.some((t) => t.kind === 'backtick')) return undefined;
    return { statements: [render(all).trim().replace(/;$/, '')] };
  },
  'add-columns': (c) => {
    if (!c.words('ALTER', 'TABLE')) return undefined;
    const table = c.name();
    if (!table || !c.words('ADD', 'COLUMNS') || !c.punct('(')) return undefined;
    const body = c.balanced('(', ')');
    if (!body || !c.done()) return undefined;
    const defs = columnDefinitions(body, 'timestamp(6)');
    if (!defs) return undefined;
    return { statements: defs.map((d) => `ALTER TABLE ${nameText(table)} ADD COLUMN ${d}`) };
  },
  'create-external-table': (c) => {
    if (!c.words('CREATE', 'EXTERNAL', 'TABLE')) return undefined;
    const ifNotExists = c.words('IF', 'NOT', 'EXISTS');
    const table = c.name();
    if (!table || !c.punct('(')) return undefined;
    const body = c.balanced('(', ')');
    const defs = body && columnDefinitions(body, 'timestamp');
    if (!defs || !c.words('ROW', 'FORMAT', 'DELIMITED')) return undefined;
    const props: string[] = ["format = 'TEXTFILE'"];
    const literal = (): Token | undefined => (c.peek()?.kind === 'string' ? c.t[c.i++] : undefined);
    if (c.words('FIELDS', 'TERMINATED', 'BY')) {
      const sep = literal();
      if (!sep) return undefined;
      props.push(`textfile_field_separator = ${sep.text}`);
      if (c.words('ESCAPED', 'BY')) {
        const esc = literal();
        if (!esc) return undefined;
        props.push(`textfile_field_separator_escape = ${esc.text}`);
      }
    }
    if (c.words('LINES', 'TERMINATED', 'BY')) {
      // Hive (and Athena) support only newline-terminated lines.
      const lines = literal();
      if (!lines || !["'\\n'", "'\n'"].includes(lines.text)) return undefined;
    }
    if (!c.words('STORED', 'AS', 'TEXTFILE') || !c.word('LOCATION')) return undefined;
    const location = literal();
    if (!location || !c.done()) return undefined;
    props.push(`external_location = ${location.text}`);
    return {
      statements: [`CREATE TABLE ${ifNotExists ? 'IF NOT EXISTS ' : ''}${nameText(table)} (${defs.join(', ')})\nWITH (${props.join(', ')})`],
    };
  },
  'iceberg-ctas': (c, all, opts) => {
    if (!c.words('CREATE', 'TABLE')) return undefined;
    const table = c.name();
    if (!table || !c.word('WITH') || !c.punct('(')) return undefined;
    const body = c.balanced('(', ')');
    if (!body || !isWord(c.peek(), 'AS')) return undefined;
    const props = splitTopLevel(body).map((p) => ({ key: p[0]?.text.toLowerCase() ?? '', eq: p[1]?.text, value: p.slice(2) }));
    if (props.some((p) => p.eq !== '=' || p.value.length === 0)) return undefined;
    const value = (p: { value: Token[] }): string => span(all, p.value);
    const tableType = props.find((p) => p.key === 'table_type');
    if (!tableType || value(tableType).toUpperCase() !== "'ICEBERG'") return undefined;
    const kept: string[] = [];
    const sessionProperties: Record<string, string> = {};
    for (const p of props) {
      if (p.key === 'table_type' || ATHENA_ONLY_ICEBERG_PROPERTIES.has(p.key)) continue;
      if (p.key === 'is_external' && value(p).toLowerCase() === 'false') continue;
      if (p.key === 'write_compression' && p.value.length === 1 && p.value[0]!.kind === 'string') {
        sessionProperties['iceberg.compression_codec'] = p.value[0]!.text.slice(1, -1).replace(/''/g, "'").toUpperCase();
        continue;
      }
      kept.push(`${p.key} = ${value(p)}`);
    }
    const parts = table.map(trinoText);
    const qualified = parts.length === 3 ? ['iceberg', ...parts.slice(1)] : parts.length === 2 ? ['iceberg', ...parts] : ['iceberg', `"${(opts.database ?? 'default').replace(/"/g, '""')}"`, ...parts];
    const query = c.rest();
    return {
      statements: [`CREATE TABLE ${qualified.join('.')}${kept.length ? `\nWITH (${kept.join(', ')})` : ''}\n${query}`],
      ...(Object.keys(sessionProperties).length ? { sessionProperties } : {}),
    };
  },
  optimize: (c) => {
    if (!c.word('OPTIMIZE')) return undefined;
    const table = c.name();
    if (!table || !c.words('REWRITE', 'DATA', 'USING', 'BIN_PACK')) return undefined;
    if (!c.done() && !isWord(c.peek(), 'WHERE')) return undefined;
    const where = c.rest();
    return { statements: [`ALTER TABLE ${nameText(table)} EXECUTE optimize${where ? ` ${where}` : ''}`] };
  },
  vacuum: (c, _all, opts) => {
    if (!c.word('VACUUM')) return undefined;
    const table = c.name();
    // "Double quotes do not work in place of backticks" for VACUUM (Athena's VACUUM page): such a
    // statement is left as it is, for Trino to refuse as Athena does.
    if (!table || !c.done() || table.some((t) => t.kind === 'quoted')) return undefined;
    const seconds = opts.vacuumMaxSnapshotAgeSeconds ?? ATHENA_DEFAULT_VACUUM_MAX_SNAPSHOT_AGE_SECONDS;
    const threshold = seconds % 86_400 === 0 ? `${seconds / 86_400}d` : `${seconds}s`;
    return {
      statements: [
        `ALTER TABLE ${nameText(table)} EXECUTE expire_snapshots(retention_threshold => '${threshold}')`,
        `ALTER TABLE ${nameText(table)} EXECUTE remove_orphan_files(retention_threshold => '${threshold}')`,
      ],
    };
  },
};

/** Athena Iceberg table properties Trino has no counterpart for (dropped; see the iceberg-ctas rule). */
const ATHENA_ONLY_ICEBERG_PROPERTIES = new Set([
  'optimize_rewrite_min_data_file_size_bytes',
  'optimize_rewrite_max_data_file_size_bytes',
  'optimize_rewrite_data_file_threshold',
  'optimize_rewrite_delete_file_threshold',
  'vacuum_min_snapshots_to_keep',
  'vacuum_max_snapshot_age_seconds',
  'vacuum_max_metadata_files_to_keep',
  'compression_level',
]);

/** Translate one Athena statement into the Trino statements that do the same, run in order. */
export function translateAthenaStatement(sql: string, opts: TranslateOptions = {}): AthenaTranslation {
  const all = tokenize(sql);
  const sig = significant(all);
  for (const rule of ATHENA_TRANSLATIONS) {
    const out = RULES[rule.id]!(new Cursor(sig, all), all, opts);
    if (out) return { ...out, translation: rule.id };
  }
  return { statements: [sql] };
}

/** The statement's first keywords, for Athena's StatementType. */
export type AthenaStatementType = 'DDL' | 'DML' | 'UTILITY';

export function athenaStatementType(sql: string): AthenaStatementType {
  const sig = significant(tokenize(sql)).filter((t) => t.text !== '(');
  const [a, b] = [sig[0]?.text.toUpperCase() ?? '', sig[1]?.text.toUpperCase() ?? ''];
  if (['SELECT', 'WITH', 'VALUES', 'TABLE', 'INSERT', 'MERGE', 'UPDATE', 'DELETE', 'UNLOAD', 'OPTIMIZE', 'VACUUM'].includes(a)) return 'DML';
  // CTAS is DML for Athena (its API reference names "CREATE TABLE AS SELECT" as a DML example).
  if (a === 'CREATE' && (b === 'TABLE' || b === 'OR') && sig.some((t, i) => isWord(t, 'AS') && i > 2 && !isWord(sig[i - 1], 'STORED'))) {
    const hasQuery = sig.some((t, i) => isWord(t, 'AS') && ['SELECT', 'WITH', '(', 'VALUES', 'TABLE'].includes(sig[i + 1]?.text.toUpperCase() ?? ''));
    if (hasQuery) return 'DML';
  }
  if (['SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'USE'].includes(a)) return 'UTILITY';
  return 'DDL';
}
