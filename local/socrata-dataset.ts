/**
 * The rows the local Socrata server holds: in memory, or compactly in a row file (only the system
 * fields and the key in memory), generated in the background while the first pages are served.
 * Sort orders and each row's JSON are cached until the next mutation.
 */
import type { FireIncidentGenerator } from './fire-incidents-generator';
import { compareKeys, fieldValue, SoqlError, type FieldKind, type OrderKey, type Row, type WhereNode } from './soql';
import type { RowFile } from './row-file';

export interface ColumnMeta {
  fieldName: string;
  dataTypeName: string;
}

export const SYSTEM_KIND: Record<string, FieldKind> = { ':id': 'text', ':created_at': 'timestamp', ':updated_at': 'timestamp' };

export function kindOfType(t: string): FieldKind {
  if (t === 'number' || t === 'integer' || t === 'money' || t === 'double') return 'number';
  if (t === 'floating_timestamp' || t === 'calendar_date' || t === 'fixed_timestamp') return 'timestamp';
  if (t === 'text' || t === 'url' || t === 'checkbox') return 'text';
  return 'other';
}

/** Where a compactly stored row's text is in the row file (symbol keys: invisible to JSON and Object.keys). */
const OFFSET = Symbol('row file offset');
const LENGTH = Symbol('row file length');
type StoredRow = Row & { [OFFSET]?: number; [LENGTH]?: number };

/** Generated rows not yet produced: the compact server generates them in the background while it serves. */
export interface PendingRows {
  generator: FireIncidentGenerator;
  /** Row counts still to generate: the first with the generator's own load batches, later ones as growth. */
  segments: { rows: number; growth: boolean; at?: string }[];
  /** `:updated_at` of a growth segment (all its rows share it, as a publisher's insert would). */
  at?: string;
  /** The current load batch (rows sharing one `:updated_at`), sorted by `:id` once complete. */
  batch: Row[];
  total: number;
}

export class Dataset {
  rows: Row[] = [];
  private readonly kinds: Map<string, FieldKind>;
  private sorted = new Map<string, Row[]>();
  private readonly jsonAll = new WeakMap<Row, string>();
  private readonly jsonPlain = new WeakMap<Row, string>();
  /** Compact mode only: the fields kept in memory; every other one is read from the row file. */
  private readonly light: Set<string>;
  /** Compact mode: `rows` is in `:updated_at, :id` order (generated and grown rows are), so that order needs no sort. */
  keysetSorted = false;
  pending: PendingRows | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    readonly columns: ColumnMeta[],
    primaryKey: string,
    private readonly file?: RowFile,
  ) {
    this.kinds = new Map(columns.map((c) => [c.fieldName, kindOfType(c.dataTypeName)]));
    this.light = new Set([':id', ':created_at', ':updated_at', primaryKey]);
  }

  kindOf = (field: string): FieldKind => {
    const k = SYSTEM_KIND[field] ?? this.kinds.get(field);
    if (!k) throw new SoqlError(`No such column: ${field}`, 'query.soql.no-such-column');
    return k;
  };

  changed(): void {
    this.sorted.clear();
  }

  /** A row as the dataset holds it: in compact mode its text goes to the file and only the light fields stay. */
  intern(full: Row): Row {
    if (!this.file) return full;
    const [off, len] = this.file.append(JSON.stringify(full));
    const row: StoredRow = {};
    for (const f of this.light) if (full[f] !== undefined && full[f] !== null) row[f] = full[f];
    row[OFFSET] = off;
    row[LENGTH] = len;
    return row;
  }

  /** Every field of a row (compact mode reads it back from the file). */
  full(row: Row): Row {
    if (!this.file) return row;
    return JSON.parse(this.text(row).toString('utf8')) as Row;
  }

  private text(row: StoredRow): Buffer {
    return this.file!.read(row[OFFSET]!, row[LENGTH]!);
  }

  /** Whether comparing/projecting these fields needs the whole row (compact mode, a field not kept in memory). */
  needsFull(fields: Iterable<string>): boolean {
    if (!this.file) return false;
    for (const f of fields) if (!this.light.has(f)) return true;
    return false;
  }

  sortedBy(order: OrderKey[]): Row[] {
    const key = order.map((o) => `${o.field} ${o.desc ? 'd' : 'a'}`).join(',');
    if (this.keysetSorted && key === ':updated_at a,:id a') return this.rows;
    let rows = this.sorted.get(key);
    if (!rows) {
      const kinds = order.map((o) => this.kindOf(o.field));
      const whole = this.needsFull(order.map((o) => o.field));
      const decorated = this.rows.map((row) => {
        const values = whole ? this.full(row) : row;
        return { row, keys: order.map((o, i) => fieldValue(kinds[i]!, values[o.field])) };
      });
      decorated.sort((a, b) => compareKeys(a.keys, b.keys, order));
      rows = decorated.map((d) => d.row);
      this.sorted.set(key, rows);
    }
    return rows;
  }

  json(row: Row, system: boolean): string | Buffer {
    if (this.file) return system ? this.text(row) : plainJson(this.full(row));
    const cache = system ? this.jsonAll : this.jsonPlain;
    let s = cache.get(row);
    if (s === undefined) {
      s = system ? JSON.stringify(row) : plainJson(row);
      cache.set(row, s);
    }
    return s;
  }

  /** Rows the dataset will hold once generation is done. */
  get plannedRows(): number {
    return this.pending ? this.pending.total : this.rows.length;
  }

  /** Generates up to `max` more pending rows; false when there is nothing left. */
  generateSome(max: number): boolean {
    const p = this.pending;
    if (!p) return false;
    for (let n = 0; n < max; n++) {
      const seg = p.segments[0];
      if (!seg || seg.rows === 0) {
        if (seg) p.segments.shift();
        this.flushBatch();
        if (!p.segments.length) {
          this.pending = undefined;
          break;
        }
        // Growth: new rows get one new `:updated_at` after every row already there, like mutate({ add }).
        const next = p.segments[0]!;
        if (next.growth) {
          const afterNewest = Date.parse(String(this.rows.at(-1)?.[':updated_at'] ?? 0)) + 1000;
          p.at = new Date(Math.max(afterNewest, next.at ? Date.parse(next.at) : 0)).toISOString();
        }
        continue;
      }
      const dense = p.generator.nextDense();
      if (seg.growth) {
        dense[':created_at'] = p.at;
        dense[':updated_at'] = p.at;
      }
      seg.rows--;
      const row = this.intern(dense);
      if (p.batch.length && p.batch[0]![':updated_at'] !== row[':updated_at']) this.flushBatch();
      p.batch.push(row);
    }
    this.sorted.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return this.pending !== undefined;
  }

  private flushBatch(): void {
    const batch = this.pending?.batch;
    if (!batch?.length) return;
    batch.sort((a, b) => (String(a[':id']) < String(b[':id']) ? -1 : 1));
    for (const r of batch) this.rows.push(r);
    this.pending!.batch = [];
  }

  /** Waits until `ready()` holds or generation is done. */
  async until(ready: () => boolean): Promise<void> {
    while (this.pending && !ready()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  generateAll(): void {
    while (this.generateSome(10_000));
  }
}

function plainJson(row: Row): string {
  const plain: Row = {};
  for (const [k, v] of Object.entries(row)) if (!k.startsWith(':')) plain[k] = v;
  return JSON.stringify(plain);
}

/** Field names a `$where` tree reads. */
export function whereFields(node: WhereNode, into: Set<string> = new Set()): Set<string> {
  switch (node.kind) {
    case 'and':
    case 'or':
      for (const a of node.args) whereFields(a, into);
      break;
    case 'not':
      whereFields(node.arg, into);
      break;
    default:
      into.add(node.field);
  }
  return into;
}

/** A fresh `:id` in the shape Socrata gives them. */
export function randomSystemId(rand: () => number): string {
  const s = Math.floor(rand() * 36 ** 8).toString(36).padStart(8, '0');
  return `row-${s.slice(0, 4)}-${s.slice(4)}`;
}
