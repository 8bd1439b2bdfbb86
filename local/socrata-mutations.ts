/**
 * A publisher's changes to the local Socrata server's rows (updates, inserts, deletes, a full
 * replace), drawn deterministically from the server's seeded randomness so a test sees the same
 * rows changed on every run.
 */
import { floating, type FireIncidentGenerator, type FireIncidentRow } from './fire-incidents-generator';
import type { Row } from './soql';
import { kindOfType, randomSystemId, type Dataset } from './socrata-dataset';

export interface MutateOptions {
  /** Rows to update: new `:updated_at`, changed values. */
  update?: number;
  /** New generated rows. */
  add?: number;
  /** New rows without the primary key column. */
  addKeyless?: number;
  /** New rows whose JSON exceeds 1,000 KiB. */
  addOversize?: number;
  /** These rows, added as they are (system fields set here): for datasets other than SF Fire Incidents. */
  addRows?: Row[];
  /** Rows to delete, chosen at random (deterministically). */
  delete?: number;
  /** Rows to delete, by primary key. */
  deleteKeys?: string[];
  /**
   * A publisher's full replace, applied after the other operations: every row gets a new
   * `:updated_at`; with `newIds` also a new `:id` and `:created_at` (a truncate-and-insert style
   * replace); `change` rows, chosen at random, also get new values (as `update` does).
   */
  replace?: { newIds?: boolean; change?: number };
  /** The `:updated_at` of changed/added rows; default: one second after the newest row. */
  at?: Date;
}

export interface MutateResult {
  /** `:id`s of the rows changed or added, per operation. */
  updated: string[];
  added: string[];
  keyless: string[];
  oversize: string[];
  /** Primary keys of the deleted rows. */
  deleted: string[];
  /** Rows a full replace rewrote (all of them), and the primary keys of those whose values changed. */
  replaced: number;
  replacedChanged: string[];
  updatedAt: string;
}

/** What a mutation draws on: the rows, the generator of new rows, the seeded randomness, the key. */
export interface MutationSource {
  dataset: Dataset;
  generator: FireIncidentGenerator;
  rand: () => number;
  primaryKey: string;
}

/** Applies `m` in a fixed order (updates, inserts, deletes, then a replace): the random draws follow it. */
export function mutateDataset(source: MutationSource, m: MutateOptions): MutateResult {
  const { dataset } = source;
  // A mutation picks among, and comes after, every row: generate the rest first. Compact rows are
  // read whole from the file where values are needed and written back as new text.
  dataset.generateAll();
  dataset.keysetSorted = false;
  const mutation = new Mutation(source, (m.at ?? new Date(newestUpdate(dataset.rows) + 1000)).toISOString());
  mutation.update(m.update ?? 0);
  mutation.addGenerated(m.add ?? 0, (r) => r, mutation.result.added);
  mutation.addGenerated(
    m.addKeyless ?? 0,
    (r) => {
      delete r[source.primaryKey];
      return r;
    },
    mutation.result.keyless,
  );
  mutation.addGenerated(m.addOversize ?? 0, (r) => ({ ...r, action_taken_other: `${'OVERSIZE '.repeat(125_000)}` }), mutation.result.oversize);
  mutation.addRows(m.addRows ?? []);
  mutation.delete(m.delete ?? 0, m.deleteKeys ?? []);
  if (m.replace) mutation.replace(m.replace);
  dataset.changed();
  return mutation.result;
}

function newestUpdate(rows: readonly Row[]): number {
  let max = 0;
  for (const r of rows) {
    const t = Date.parse(String(r[':updated_at']));
    if (t > max) max = t;
  }
  return max;
}

/** One mutation: its `:updated_at`, its result, and the `:id`s already taken. */
class Mutation {
  readonly result: MutateResult;
  private readonly dataset: Dataset;
  private used: Set<string> | undefined;

  constructor(
    private readonly source: MutationSource,
    private readonly at: string,
  ) {
    this.dataset = source.dataset;
    this.result = { updated: [], added: [], keyless: [], oversize: [], deleted: [], replaced: 0, replacedChanged: [], updatedAt: at };
  }

  update(count: number): void {
    const { dataset } = this;
    for (const i of this.pick(count)) {
      const row = this.changed(dataset.full(dataset.rows[i]!));
      dataset.rows[i] = dataset.intern(row);
      this.result.updated.push(String(row[':id']));
    }
  }

  /** `count` new generated rows, shaped by `build`, their `:id`s listed in `into`. */
  addGenerated(count: number, build: (r: FireIncidentRow) => Row, into: string[]): void {
    for (let i = 0; i < count; i++) {
      const r = build(this.source.generator.next());
      r[':created_at'] = this.at;
      r[':updated_at'] = this.at;
      this.dataset.rows.push(this.dataset.intern(r));
      into.push(String(r[':id']));
    }
  }

  addRows(rows: Row[]): void {
    for (const r of rows) {
      const row: Row = { ...r, ':id': this.newSystemId(), ':created_at': this.at, ':updated_at': this.at };
      this.dataset.rows.push(this.dataset.intern(row));
      this.result.added.push(String(row[':id']));
    }
  }

  /** Deletes `count` random rows and those with these primary keys. */
  delete(count: number, keys: string[]): void {
    const { dataset } = this;
    const { primaryKey } = this.source;
    const doomed = new Set(this.pick(count));
    if (keys.length) {
      const wanted = new Set(keys);
      dataset.rows.forEach((r, i) => wanted.has(String(r[primaryKey])) && doomed.add(i));
    }
    if (doomed.size) {
      for (const i of doomed) this.result.deleted.push(String(dataset.rows[i]![primaryKey]));
      dataset.rows = dataset.rows.filter((_, i) => !doomed.has(i));
    }
  }

  replace(spec: NonNullable<MutateOptions['replace']>): void {
    const { dataset } = this;
    const change = new Set(this.pick(spec.change ?? 0));
    dataset.rows = dataset.rows.map((stored, i) => {
      const old = dataset.full(stored);
      const row: Row = change.has(i) ? this.changed(old) : { ...old, ':updated_at': this.at };
      if (change.has(i)) this.result.replacedChanged.push(String(row[this.source.primaryKey]));
      if (spec.newIds) {
        row[':id'] = this.newSystemId();
        row[':created_at'] = this.at;
      }
      return dataset.intern(row);
    });
    this.result.replaced = dataset.rows.length;
  }

  /** A `:id` no row has had in this server (a replace or an insert never reuses one). */
  private newSystemId(): string {
    this.used ??= new Set(this.dataset.rows.map((r) => String(r[':id'])));
    for (;;) {
      const id = randomSystemId(this.source.rand);
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
  }

  /** Indexes of `count` distinct random rows, ascending. */
  private pick(count: number): number[] {
    const { rows } = this.dataset;
    const n = Math.min(count, rows.length);
    const chosen = new Set<number>();
    while (chosen.size < n) chosen.add(Math.floor(this.source.rand() * rows.length));
    return [...chosen].sort((a, b) => a - b);
  }

  /** New values for a row (a copy: cached JSON and sort orders are keyed by identity). */
  private changed(old: Row): Row {
    const { at } = this;
    const { dataset, rand, primaryKey } = this.source;
    const row: Row = { ...old, ':updated_at': at };
    if (old.estimated_property_loss !== undefined || dataset.columns.some((c) => c.fieldName === 'estimated_property_loss')) {
      row.estimated_property_loss = String(Number(old.estimated_property_loss ?? 0) + 1000 + Math.floor(rand() * 50) * 100);
      row.action_taken_secondary = '86 Investigate';
      row.data_as_of = floating(new Date(at));
    } else {
      // Any other dataset: change its first text column that is not the key.
      const text = dataset.columns.find((c) => c.fieldName !== primaryKey && kindOfType(c.dataTypeName) === 'text');
      if (text) row[text.fieldName] = `changed ${at}`;
    }
    return row;
  }
}
