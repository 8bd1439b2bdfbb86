/**
 * Data-test expressions are spliced into `SELECT count(*) AS failing FROM <table> WHERE NOT (<expr>)`
 * on both engines, so an expression must be exactly one row-level SQL expression: anything that
 * could end the parenthesis, the statement or the query early (`)`, `;`, a comment hiding the
 * rest) or reach beyond the row (a subquery, a table function, a statement keyword) is refused
 * before anything runs. The check is a small lexer rather than a grammar so that it runs
 * everywhere the dataset file is read (synth, the local CLI, the transform task) with no
 * dependency; test/runtime/test-expression.test.ts proves every expression it accepts parses as
 * a single statement in the Trino grammar and runs in DuckDB.
 */

/** Keywords that start or shape a statement or a query, never part of a row-level expression. */
const STATEMENT_WORDS = new Set([
  'select', 'from', 'where', 'group', 'having', 'order', 'limit', 'offset', 'fetch', 'qualify', 'window',
  'union', 'intersect', 'except', 'with', 'values', 'table', 'into', 'returning', 'insert', 'update',
  'delete', 'merge', 'create', 'drop', 'alter', 'truncate', 'copy', 'export', 'import', 'attach',
  'detach', 'pragma', 'install', 'load', 'call', 'set', 'reset', 'grant', 'revoke', 'vacuum',
  'checkpoint', 'execute', 'prepare', 'deallocate', 'unload', 'use', 'show', 'describe', 'explain',
  'summarize', 'pivot', 'unpivot', 'commit', 'rollback', 'begin', 'transaction', 'analyze',
]);

/** Functions whose argument syntax uses FROM (standard SQL, both engines). */
const FROM_FUNCTIONS = new Set(['extract', 'substring', 'trim', 'overlay']);

/** Why `expression` is not a single row-level boolean SQL expression, or undefined when it is. */
export function validateTestExpression(expression: string): string | undefined {
  if (expression.trim() === '') return 'is empty; give one boolean SQL expression such as "arrival_dttm >= alarm_dttm"';
  // Refused anywhere, even inside a literal: no legitimate test needs one, and it keeps the check
  // independent of each engine's string-escape rules (DuckDB's E'\'' strings, for one).
  if (expression.includes(';')) return 'contains ";": an expression test is one SQL expression, not statements';
  // A backslash escapes a quote inside DuckDB's E'...' strings, which would make the engine see a
  // literal end where this lexer does not; no row-level test needs one.
  if (expression.includes('\\')) return 'contains "\\": backslash escapes are not allowed (use [0-9] rather than \\d in patterns)';
  // For each open parenthesis, the word before it: FROM is part of EXTRACT(year FROM ts) and
  // friends, and of IS DISTINCT FROM, but anywhere else it starts a (DuckDB FROM-first) query.
  const open: string[] = [];
  let previousWord = '';
  let depth = 0;
  let i = 0;
  const s = expression;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "'" || c === '"') {
      // A literal or a quoted identifier. A doubled quote inside one ('it''s') scans as two
      // adjacent literals, which leaves exactly the same text outside literals.
      const j = s.indexOf(c, i + 1);
      if (j < 0) return `has an unterminated ${c === "'" ? 'string literal' : 'quoted identifier'} starting at character ${i + 1}`;
      i = j + 1;
      previousWord = '';
      continue;
    }
    if (s.startsWith('--', i) || s.startsWith('/*', i)) return `contains a comment ("${s.slice(i, i + 2)}" at character ${i + 1}); remove it`;
    if (c === '(' || c === '[') {
      depth++;
      open.push(c === '(' ? previousWord : '');
    } else if (c === ')' || c === ']') {
      depth--;
      open.pop();
      if (depth < 0) return `closes a parenthesis it did not open (character ${i + 1}): an expression cannot end the surrounding query`;
    } else if (c === ',' && depth === 0) {
      return `has a top-level "," (character ${i + 1}): give one expression, combine conditions with AND/OR`;
    } else if ('$?`{}'.includes(c)) {
      return `contains "${c}" (character ${i + 1}), which no row-level expression needs`;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < s.length && /[A-Za-z0-9_]/.test(s[j]!)) j++;
      const word = s.slice(i, j).toLowerCase();
      const fromInExpression = word === 'from' && (previousWord === 'distinct' || FROM_FUNCTIONS.has(open[open.length - 1] ?? ''));
      if (STATEMENT_WORDS.has(word) && !fromInExpression) {
        return `contains the keyword ${word.toUpperCase()}: an expression test is one row-level boolean expression (no statements, subqueries or clauses); quote a column of that name as "${word}"`;
      }
      previousWord = word;
      i = j;
      continue;
    }
    if (!/\s/.test(c)) previousWord = '';
    i++;
  }
  if (depth !== 0) return 'has an unclosed parenthesis or bracket';
  return undefined;
}
