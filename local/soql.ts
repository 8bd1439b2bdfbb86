/**
 * The SoQL subset the local Socrata server understands: `$select` (`:*,*`, `*`, column lists,
 * `count(*)` [AS alias]), `$where` (comparisons, AND/OR/NOT, parentheses, IS [NOT] NULL, IN (...)),
 * `$order` (several keys, ASC/DESC); identifiers plain or backticked. Anything else is a SoqlError,
 * served as Socrata's 400.
 */
import { RequestRefusedError } from '../runtime/pipeline-error';

export type FieldKind = 'text' | 'number' | 'timestamp' | 'other';
export type Row = Record<string, unknown>;

export class SoqlError extends RequestRefusedError {
  override name = 'SoqlError';
  constructor(
    message: string,
    readonly code = 'query.compiler.malformed',
  ) {
    super(message);
  }
}

type Token =
  | { t: 'ident'; v: string }
  | { t: 'string'; v: string }
  | { t: 'number'; v: number }
  | { t: 'op'; v: string }
  | { t: 'punct'; v: '(' | ')' | ',' | '*' };

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IS', 'NULL', 'ASC', 'DESC', 'AS', 'IN']);

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new SoqlError(`Unterminated string literal in "${src}"`);
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            s += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += src[i++];
      }
      out.push({ t: 'string', v: s });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9.]/.test(src[i + 1] ?? ''))) {
      const m = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?/i.exec(src.slice(i))!;
      out.push({ t: 'number', v: Number(m[0]) });
      i += m[0].length;
    } else if (c === '`') {
      // A quoted identifier (`:updated_at`, `my column`): SODA 3 clients quote system fields this way.
      const end = src.indexOf('`', i + 1);
      if (end <= i + 1) throw new SoqlError(`${end < 0 ? 'Unterminated' : 'Empty'} quoted identifier at position ${i} in "${src}"`);
      out.push({ t: 'ident', v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (/[A-Za-z_:@]/.test(c)) {
      const m = /^(:\*|:?@?[A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      if (!m) throw new SoqlError(`Unexpected "${c}" at position ${i} in "${src}"`);
      out.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    } else if ('<>=!'.includes(c)) {
      const two = src.slice(i, i + 2);
      const op = ['<=', '>=', '!=', '<>'].includes(two) ? two : c;
      if (op === '!') throw new SoqlError(`Unexpected "!" at position ${i} in "${src}"`);
      out.push({ t: 'op', v: op === '<>' ? '!=' : op });
      i += op.length;
    } else if (c === '(' || c === ')' || c === ',' || c === '*') {
      out.push({ t: 'punct', v: c });
      i++;
    } else {
      throw new SoqlError(`Unexpected character "${c}" at position ${i} in "${src}"`);
    }
  }
  return out;
}

const isKeyword = (tok: Token | undefined, kw: string): boolean => tok?.t === 'ident' && tok.v.toUpperCase() === kw;

export type WhereNode =
  | { kind: 'and' | 'or'; args: WhereNode[] }
  | { kind: 'not'; arg: WhereNode }
  | { kind: 'cmp'; field: string; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: string | number }
  | { kind: 'null'; field: string; negated: boolean }
  | { kind: 'in'; field: string; values: (string | number)[] };

class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly src: string,
  ) {}
  peek(): Token | undefined {
    return this.tokens[this.pos];
  }
  next(): Token | undefined {
    return this.tokens[this.pos++];
  }
  done(): boolean {
    return this.pos >= this.tokens.length;
  }
  fail(what: string): never {
    const tok = this.peek();
    throw new SoqlError(`${what} at token ${this.pos + 1} (${tok ? JSON.stringify(tok.v) : 'end of input'}) in "${this.src}"`);
  }
  expectPunct(v: string): void {
    const tok = this.next();
    if (tok?.t !== 'punct' || tok.v !== v) {
      this.pos--;
      this.fail(`Expected "${v}"`);
    }
  }
  field(): string {
    const tok = this.next();
    if (tok?.t !== 'ident' || KEYWORDS.has(tok.v.toUpperCase())) {
      this.pos--;
      this.fail('Expected a column name');
    }
    return tok.v;
  }

  or(): WhereNode {
    return this.junction('or', () => this.and());
  }
  and(): WhereNode {
    return this.junction('and', () => this.unary());
  }
  /** `operand (AND|OR operand)*`: one operand is itself, more are one node. */
  junction(kind: 'and' | 'or', operand: () => WhereNode): WhereNode {
    const args = [operand()];
    while (isKeyword(this.peek(), kind.toUpperCase())) {
      this.next();
      args.push(operand());
    }
    return args.length === 1 ? args[0]! : { kind, args };
  }
  unary(): WhereNode {
    if (isKeyword(this.peek(), 'NOT')) {
      this.next();
      return { kind: 'not', arg: this.unary() };
    }
    const tok = this.peek();
    if (tok?.t === 'punct' && tok.v === '(') {
      this.next();
      const inner = this.or();
      this.expectPunct(')');
      return inner;
    }
    const field = this.field();
    if (isKeyword(this.peek(), 'IS')) {
      this.next();
      let negated = false;
      if (isKeyword(this.peek(), 'NOT')) {
        this.next();
        negated = true;
      }
      if (!isKeyword(this.next(), 'NULL')) {
        this.pos--;
        this.fail('Expected NULL after IS');
      }
      return { kind: 'null', field, negated };
    }
    if (isKeyword(this.peek(), 'IN')) {
      // `field IN ('a', 'b')`: the repair phase fetches rows by key this way.
      this.next();
      this.expectPunct('(');
      const values: (string | number)[] = [];
      for (;;) {
        const lit = this.next();
        if (lit?.t !== 'string' && lit?.t !== 'number') {
          this.pos--;
          this.fail('Expected a string or number literal in IN (...)');
        }
        values.push(lit.v);
        const sep = this.next();
        if (sep?.t === 'punct' && sep.v === ')') break;
        if (sep?.t !== 'punct' || sep.v !== ',') {
          this.pos--;
          this.fail('Expected "," or ")" in IN (...)');
        }
      }
      return { kind: 'in', field, values };
    }
    const op = this.next();
    if (op?.t !== 'op') {
      this.pos--;
      this.fail(`Unsupported expression after "${field}" (supported: = != <> < <= > >= IS [NOT] NULL)`);
    }
    const lit = this.next();
    if (lit?.t !== 'string' && lit?.t !== 'number') {
      this.pos--;
      this.fail('Expected a string or number literal');
    }
    return { kind: 'cmp', field, op: op.v as '=', value: lit.v };
  }
}

export function parseWhere(src: string): WhereNode {
  const p = new Parser(tokenize(src), src);
  const node = p.or();
  if (!p.done()) p.fail('Unexpected input');
  return node;
}

export type SelectSpec =
  | { kind: 'all'; system: boolean }
  | { kind: 'columns'; columns: { field: string; alias: string }[] }
  | { kind: 'count'; alias: string };

export function parseSelect(src: string | undefined): SelectSpec {
  if (src === undefined || !src.trim()) return { kind: 'all', system: false };
  const p = new Parser(tokenize(src), src);
  const items: { field: string; alias: string }[] = [];
  let star = false;
  let systemStar = false;
  let count: string | undefined;
  for (;;) {
    const tok = p.peek();
    if (tok?.t === 'punct' && tok.v === '*') {
      p.next();
      star = true;
    } else if (tok?.t === 'ident' && tok.v === ':*') {
      p.next();
      systemStar = true;
    } else if (tok?.t === 'ident' && tok.v.toLowerCase() === 'count' && p['tokens'][p['pos'] + 1]?.t === 'punct') {
      p.next();
      p.expectPunct('(');
      p.expectPunct('*');
      p.expectPunct(')');
      count = 'count';
      if (isKeyword(p.peek(), 'AS')) {
        p.next();
        count = p.field();
      }
    } else {
      const field = p.field();
      let alias = field;
      if (isKeyword(p.peek(), 'AS')) {
        p.next();
        alias = p.field();
      }
      items.push({ field, alias });
    }
    if (p.done()) break;
    p.expectPunct(',');
  }
  if (count !== undefined) {
    if (items.length || star || systemStar) {
      throw new SoqlError('count(*) mixed with other columns needs $group, which this server does not support', 'query.soql.type-mismatch');
    }
    return { kind: 'count', alias: count };
  }
  if (star || systemStar) {
    if (items.length) throw new SoqlError(`Mixing * with a column list is not supported: "${src}"`);
    if (systemStar && !star) throw new SoqlError(`":*" must be used as ":*,*": "${src}"`);
    return { kind: 'all', system: systemStar };
  }
  return { kind: 'columns', columns: items };
}

export interface OrderKey {
  field: string;
  desc: boolean;
}

export function parseOrder(src: string | undefined): OrderKey[] {
  if (src === undefined || !src.trim()) return [];
  const p = new Parser(tokenize(src), src);
  const keys: OrderKey[] = [];
  for (;;) {
    const field = p.field();
    let desc = false;
    if (isKeyword(p.peek(), 'ASC')) p.next();
    else if (isKeyword(p.peek(), 'DESC')) {
      p.next();
      desc = true;
    }
    keys.push({ field, desc });
    if (p.done()) break;
    p.expectPunct(',');
  }
  return keys;
}

/** Comparable value of a field; undefined when null/absent. Timestamps become epoch millis. */
export function fieldValue(kind: FieldKind, raw: unknown): string | number | undefined {
  if (raw === undefined || raw === null) return undefined;
  switch (kind) {
    case 'number': {
      const n = Number(raw);
      return Number.isNaN(n) ? undefined : n;
    }
    case 'timestamp': {
      const s = String(raw);
      // Floating timestamps carry no zone: read them as UTC, like the server's own clock.
      const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) || s.length <= 10 ? s : `${s}Z`);
      return Number.isNaN(t) ? undefined : t;
    }
    case 'text':
      return String(raw);
    default:
      return typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
  }
}

export type KindOf = (field: string) => FieldKind;

/** Compiles a $where tree to a predicate with SQL's three-valued logic (null → row excluded). */
export function compileWhere(node: WhereNode, kindOf: KindOf): (row: Row) => boolean {
  const f = compileNode(node, kindOf);
  return (row) => f(row) === true;
}

/**
 * AND (`decisive` false) or OR (`decisive` true) in three-valued logic: one decisive operand
 * decides; else any null makes it null.
 */
function junction(operands: ((row: Row) => boolean | null)[], decisive: boolean): (row: Row) => boolean | null {
  return (row) => {
    let sawNull = false;
    for (const f of operands) {
      const v = f(row);
      if (v === decisive) return decisive;
      if (v === null) sawNull = true;
    }
    return sawNull ? null : !decisive;
  };
}

function compileNode(node: WhereNode, kindOf: KindOf): (row: Row) => boolean | null {
  switch (node.kind) {
    case 'and':
      return junction(node.args.map((a) => compileNode(a, kindOf)), false);
    case 'or':
      return junction(node.args.map((a) => compileNode(a, kindOf)), true);
    case 'not': {
      const f = compileNode(node.arg, kindOf);
      return (row) => {
        const v = f(row);
        return v === null ? null : !v;
      };
    }
    case 'null': {
      const { field, negated } = node;
      kindOf(field);
      return (row) => (row[field] === undefined || row[field] === null) !== negated;
    }
    case 'in': {
      const kind = kindOf(node.field);
      const k = kind === 'other' ? 'text' : kind;
      const set = new Set(node.values.map((v) => fieldValue(k, v)));
      return (row) => {
        const v = fieldValue(k, row[node.field]);
        return v === undefined ? null : set.has(v);
      };
    }
    case 'cmp': {
      const { field, op } = node;
      const kind = kindOf(field);
      const lit = fieldValue(kind === 'other' ? 'text' : kind, node.value);
      if (lit === undefined) throw new SoqlError(`Literal ${JSON.stringify(node.value)} cannot be compared with ${kind} column ${field}`, 'query.soql.type-mismatch');
      const k = kind === 'other' ? 'text' : kind;
      const cmp = (a: string | number): boolean => {
        switch (op) {
          case '=':
            return a === lit;
          case '!=':
            return a !== lit;
          case '<':
            return a < lit;
          case '<=':
            return a <= lit;
          case '>':
            return a > lit;
          case '>=':
            return a >= lit;
        }
      };
      return (row) => {
        const v = fieldValue(k, row[field]);
        return v === undefined ? null : cmp(v);
      };
    }
  }
}

/** Sort comparator over pre-computed keys; nulls sort last ascending (first descending). */
export function compareKeys(a: (string | number | undefined)[], b: (string | number | undefined)[], order: OrderKey[]): number {
  for (let i = 0; i < order.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    let c: number;
    if (x === undefined) c = 1;
    else if (y === undefined) c = -1;
    else c = x < y ? -1 : 1;
    return order[i]!.desc ? -c : c;
  }
  return 0;
}

/**
 * The conjunct of a $where that is a lower bound on the leading sort keys (the keyset form
 * `k1 > v` / `k1 >= v` / `k1 > v OR (k1 = v AND k2 > w)`), if any: rows matching it form a
 * suffix of the sorted rows, so the server binary-searches its start instead of scanning.
 */
export function keysetLowerBound(where: WhereNode, order: OrderKey[]): WhereNode | undefined {
  const conjuncts = where.kind === 'and' ? where.args : [where];
  const [k1, k2] = order;
  if (!k1 || k1.desc) return undefined;
  for (const c of conjuncts) {
    if (c.kind === 'cmp' && c.field === k1.field && (c.op === '>' || c.op === '>=')) return c;
    if (c.kind === 'or' && c.args.length === 2 && k2 && !k2.desc) {
      const [a, b] = c.args;
      if (
        a?.kind === 'cmp' && a.field === k1.field && a.op === '>' &&
        b?.kind === 'and' && b.args.length === 2 &&
        b.args[0]?.kind === 'cmp' && b.args[0].field === k1.field && b.args[0].op === '=' && b.args[0].value === a.value &&
        b.args[1]?.kind === 'cmp' && b.args[1].field === k2.field && (b.args[1].op === '>' || b.args[1].op === '>=')
      ) {
        return c;
      }
    }
  }
  return undefined;
}
