/**
 * The where clauses the local ArcGIS server answers: the subset of ArcGIS standardized SQL the
 * adapter sends (comparisons, IS [NOT] NULL, IN lists, AND/OR/parentheses, numbers, 'text' and
 * `timestamp 'YYYY-MM-DD HH:MI:SS'` read as UTC). Anything else is an error, as a real layer
 * answers a clause it cannot parse (code 400).
 */
import { UsageError } from '../runtime/pipeline-error';

type Value = number | string | null;
type Row = (field: string) => Value;
type Node = (row: Row) => boolean;

/** A clause the local layer cannot read: the request is wrong, answered as a layer answers it (code 400). */
export class WhereSyntaxError extends UsageError {
  override name = 'WhereSyntaxError';
}

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|<>|=|>|<|\(|\)|,))/y;

function tokenize(text: string): { kind: 'num' | 'str' | 'id' | 'op'; value: string }[] {
  const tokens: { kind: 'num' | 'str' | 'id' | 'op'; value: string }[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new WhereSyntaxError(`cannot read the where clause at "${text.slice(at, at + 20)}"`);
    if (m[1] !== undefined) tokens.push({ kind: 'num', value: m[1] });
    else if (m[2] !== undefined) tokens.push({ kind: 'str', value: m[2].replace(/''/g, "'") });
    else if (m[3] !== undefined) tokens.push({ kind: 'id', value: m[3] });
    else tokens.push({ kind: 'op', value: m[4]! });
  }
  return tokens;
}

function timestampValue(text: string): number {
  if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(text)) throw new WhereSyntaxError(`timestamp '${text}' is not 'YYYY-MM-DD HH:MI:SS'`);
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}

const compare = (a: Value, b: Value): number | undefined => {
  if (a === null || b === null) return undefined;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const [x, y] = [String(a), String(b)];
  return x === y ? 0 : x < y ? -1 : 1;
};

/** Parses `where` into a predicate over a row's fields (looked up case-insensitively by the caller). */
export function parseWhere(where: string): Node {
  const tokens = tokenize(where);
  let i = 0;
  const peek = () => tokens[i];
  const word = (w: string) => peek()?.kind === 'id' && peek()!.value.toUpperCase() === w;
  const expect = (v: string) => {
    if (peek()?.value !== v) throw new WhereSyntaxError(`expected "${v}" in the where clause`);
    i++;
  };
  const value = (): ((row: Row) => Value) => {
    const t = tokens[i++];
    if (!t) throw new WhereSyntaxError('the where clause ends early');
    if (t.kind === 'num') return () => Number(t.value);
    if (t.kind === 'str') return () => t.value;
    if (t.kind === 'id' && t.value.toLowerCase() === 'timestamp' && peek()?.kind === 'str') {
      const ms = timestampValue(tokens[i++]!.value);
      return () => ms;
    }
    if (t.kind === 'id') return (row) => row(t.value);
    throw new WhereSyntaxError(`unexpected "${t.value}" in the where clause`);
  };
  const comparison = (): Node => {
    if (peek()?.value === '(') {
      i++;
      const inner = or();
      expect(')');
      return inner;
    }
    const left = value();
    if (word('IS')) {
      i++;
      const not = word('NOT');
      if (not) i++;
      if (!word('NULL')) throw new WhereSyntaxError('expected NULL after IS');
      i++;
      return (row) => (left(row) === null) !== not;
    }
    if (word('IN')) {
      i++;
      expect('(');
      const list = [value()];
      while (peek()?.value === ',') {
        i++;
        list.push(value());
      }
      expect(')');
      return (row) => list.some((v) => compare(left(row), v(row)) === 0);
    }
    const op = tokens[i++]?.value;
    const right = value();
    const test: Record<string, (c: number) => boolean> = { '=': (c) => c === 0, '<>': (c) => c !== 0, '>': (c) => c > 0, '>=': (c) => c >= 0, '<': (c) => c < 0, '<=': (c) => c <= 0 };
    const t = op ? test[op] : undefined;
    if (!t) throw new WhereSyntaxError(`unknown operator "${op}" in the where clause`);
    return (row) => {
      const c = compare(left(row), right(row));
      return c !== undefined && t(c);
    };
  };
  const and = (): Node => {
    let node = comparison();
    while (word('AND')) {
      i++;
      const [a, b] = [node, comparison()];
      node = (row) => a(row) && b(row);
    }
    return node;
  };
  const or = (): Node => {
    let node = and();
    while (word('OR')) {
      i++;
      const [a, b] = [node, and()];
      node = (row) => a(row) || b(row);
    }
    return node;
  };
  const node = or();
  if (i < tokens.length) throw new WhereSyntaxError(`unexpected "${tokens[i]!.value}" in the where clause`);
  return node;
}
