/**
 * Source rows for the local Socrata server, for any dataset definition: SF Fire Incidents get the
 * realistic generator; any other dataset gets rows generated from its declared column types, so a
 * dataset added as a JSON file runs end to end locally with no code.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { writeFileDurably } from './durable-file';
import { readLocalSource, writeLocalSource } from './local-source-state';
import { FIRE_INCIDENT_COLUMNS, FireIncidentGenerator, floating, seededRandom } from './fire-incidents-generator';
import type { ColumnMeta, SocrataServerOptions } from './socrata-server';
import { startSocrataProcess, type SocrataProcess, type StartSocrataProcessOptions } from './socrata-process';
import type { Row } from './soql';

export const FIRE_INCIDENTS_DATASET_ID = 'wr8u-xric';

/** Options for `startSocrataServer` that serve `rows` generated rows of this dataset. */
export function sourceFor(dataset: DatasetConfig, rows: number, seed = 1): SocrataServerOptions {
  if (dataset.source.datasetId === FIRE_INCIDENTS_DATASET_ID) {
    return { datasetId: dataset.source.datasetId, rows, seed, columns: FIRE_INCIDENT_COLUMNS, primaryKey: dataset.primaryKey };
  }
  return {
    datasetId: dataset.source.datasetId,
    rows: generateRows(dataset, rows, seed),
    seed,
    columns: columnMeta(dataset),
    primaryKey: dataset.primaryKey,
  };
}

/**
 * The first load time of a new local source: far enough before now that its newest generated
 * `:updated_at` is in the past (never a future date), close enough that the freshly created source
 * looks fresh (the source freshness test measures the lag behind the newest `:updated_at`).
 */
export function localLoadedAt(dataset: DatasetConfig, rows: number, now = new Date()): string {
  const spanMs = dataset.source.datasetId === FIRE_INCIDENTS_DATASET_ID ? FireIncidentGenerator.loadSpanBoundMs(rows) : Math.ceil(rows / 100) * 1000 + 3_600_000;
  return new Date(now.getTime() - spanMs).toISOString();
}

/**
 * The generated source of `npm run local`, remembered per data directory and dataset
 * (./local-source-state.ts) so that it behaves like
 * a real one across runs: growing it (`--rows` larger than last time) inserts the new rows with a
 * NEW `:updated_at`, after every row already served, as a publisher's insert would; regenerating
 * them would give them the `:updated_at` of the last load batch, where rows whose `:id` sorts
 * before the checkpoint would never be fetched. A smaller `--rows` starts a fresh, smaller source.
 *
 * The server runs in a child process and stores its rows compactly in `<dataDir>/local-source/`
 * (deleted when it stops; a killed run's leftovers are removed here), so neither its memory nor its
 * generation time lands in the pipeline's process.
 */
export async function startLocalSource(
  dataset: DatasetConfig,
  dataDir: string,
  rows: number,
  seed = 1,
  processOptions: StartSocrataProcessOptions = {},
): Promise<SocrataProcess> {
  const previous = await readLocalSource(dataDir, dataset);
  const same = previous !== undefined && previous.seed === seed;
  const last = same ? previous.rows.at(-1)! : 0;
  const now = new Date();
  // A new source is anchored near now; a grown one keeps its anchor and records when it grew.
  const fresh = !same || rows < last;
  const history = fresh ? [rows] : rows > last ? [...previous.rows, rows] : previous.rows;
  const loadedAt = fresh || !previous.loadedAt ? localLoadedAt(dataset, history[0]!, now) : previous.loadedAt;
  // A source remembered without these times (an older file) grows as before: one second after its newest row.
  const grownAt = fresh || !previous.loadedAt ? [] : [...(previous.grownAt ?? []), ...(rows > last ? [now.toISOString()] : [])];
  const storageDir = path.join(dataDir, 'local-source');
  await rm(storageDir, { recursive: true, force: true });
  // Replaying each growth gives the same rows and `:updated_at`s on every run.
  const server = await startSocrataProcess(
    { kind: 'dataset', dataset, history, seed, port: previous?.port ?? 0, storageDir, loadedAt, ...(grownAt.length === history.length - 1 ? { grownAt } : {}) },
    processOptions,
  );
  const largestRows = Math.max(rows, previous?.largestRows ?? 0, ...(previous?.rows ?? []));
  await writeLocalSource(
    dataDir,
    { dataset: dataset.name, seed, rows: history, port: Number(new URL(server.url).port), loadedAt, ...(grownAt.length ? { grownAt } : {}), largestRows },
    writeFileDurably,
  );
  return server;
}

/** Socrata column metadata for a dataset definition (`integer` is served as Socrata's `number`). */
export function columnMeta(dataset: DatasetConfig): ColumnMeta[] {
  return dataset.columns.map((c) => ({ fieldName: c.name, dataTypeName: c.type === 'integer' ? 'number' : c.type }));
}

/** What the declared data tests ask of each column's generated values. */
interface ColumnRules {
  /** A not_null test: the value is never left out. */
  required: boolean;
  /** An accepted_values test: only these (every test's list, when several name the column). */
  accepted?: string[];
  min?: number;
  max?: number;
}

/**
 * The column rules the dataset's declared tests imply, so generated rows pass them: a new dataset's
 * first local run is green unless its definition is wrong. Expression tests cannot be read this way;
 * their columns get the ordinary values.
 */
export function columnRules(dataset: DatasetConfig): Map<string, ColumnRules> {
  const rules = new Map<string, ColumnRules>();
  const of = (column: string) => rules.get(column) ?? rules.set(column, { required: false }).get(column)!;
  for (const t of dataset.dataTests) {
    if (t.kind === 'not_null') of(t.column).required = true;
    else if (t.kind === 'accepted_values') {
      const r = of(t.column);
      r.accepted = r.accepted ? r.accepted.filter((v) => t.values.includes(v)) : [...t.values];
    } else if (t.kind === 'range') {
      const r = of(t.column);
      if (t.min !== undefined) r.min = Math.max(r.min ?? -Infinity, t.min);
      if (t.max !== undefined) r.max = Math.min(r.max ?? Infinity, t.max);
    }
  }
  return rules;
}

/** A number in the tests' [min, max]; an open side reaches `span` beyond the other (from 0 where it can). */
function bounded(rand: () => number, rules: ColumnRules, span: number, whole: boolean): string {
  const lo = rules.min ?? (rules.max !== undefined ? Math.min(0, rules.max - span) : 0);
  const hi = rules.max ?? lo + span;
  if (whole) {
    const [a, b] = [Math.ceil(lo), Math.floor(hi)];
    return String(b >= a ? a + Math.floor(rand() * (b - a + 1)) : a);
  }
  // Two decimals, rounded inward so the printed value stays inside the bounds.
  const v = lo + rand() * (hi - lo);
  return String(Math.min(hi, Math.max(lo, Math.round(v * 100) / 100)));
}

/**
 * Rows shaped like the API's: every scalar a string, a tenth of non-key values absent (nulls are
 * omitted), points as GeoJSON around San Francisco, text from a small vocabulary per column so
 * group-bys have something to group. Values obey the declared tests (columnRules): a not_null
 * column is never absent, an accepted_values column takes only listed values, a range column
 * stays inside its bounds.
 */
export function generateRows(dataset: DatasetConfig, count: number, seed = 1): Row[] {
  const rand = seededRandom(seed);
  const start = Date.parse('2020-01-01T00:00:00Z');
  const rules = columnRules(dataset);
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const row: Row = {};
    const eventTime = start + Math.floor(rand() * 5 * 365 * 86_400_000);
    for (const c of dataset.columns) {
      if (c.name === dataset.primaryKey) {
        row[c.name] = c.type === 'integer' || c.type === 'number' ? String(100_000 + i) : `${dataset.name}-${String(i).padStart(8, '0')}`;
        continue;
      }
      const rule = rules.get(c.name);
      // Drawn as before tests were read, so a dataset without tests keeps the rows it always had.
      if (c.name !== dataset.eventTimeColumn && rand() < 0.1 && !rule?.required) continue;
      if (rule?.accepted) {
        // An empty list (two tests that share no value) cannot be met: the row leaves the value out.
        if (rule.accepted.length) row[c.name] = rule.accepted[Math.floor(rand() * rule.accepted.length)]!;
        continue;
      }
      switch (c.type) {
        case 'text':
          row[c.name] = `${c.name} ${String.fromCharCode(65 + Math.floor(rand() * 8))}`;
          break;
        case 'number':
          row[c.name] = rule?.min !== undefined || rule?.max !== undefined ? bounded(rand, rule, 1000, false) : (rand() * 1000).toFixed(2);
          break;
        case 'integer':
          row[c.name] = rule?.min !== undefined || rule?.max !== undefined ? bounded(rand, rule, 20, true) : String(Math.floor(rand() * 20));
          break;
        case 'floating_timestamp':
          row[c.name] = floating(new Date(c.name === dataset.eventTimeColumn ? eventTime : eventTime + Math.floor(rand() * 3_600_000)));
          break;
        case 'point':
          row[c.name] = {
            type: 'Point',
            coordinates: [Number((-122.51 + rand() * 0.14).toFixed(6)), Number((37.71 + rand() * 0.1).toFixed(6))],
          };
          break;
        case 'checkbox':
          row[c.name] = rand() < 0.5 ? 'true' : 'false';
          break;
        case 'fixed_timestamp':
          // Socrata serves instants in UTC with a Z.
          row[c.name] = `${floating(new Date(c.name === dataset.eventTimeColumn ? eventTime : eventTime + Math.floor(rand() * 3_600_000)))}Z`;
          break;
        case 'geometry': {
          const [x, y] = [Number((-122.51 + rand() * 0.14).toFixed(6)), Number((37.71 + rand() * 0.1).toFixed(6))];
          row[c.name] = { type: 'MultiPoint', coordinates: [[x, y], [x + 0.001, y + 0.001]] };
          break;
        }
        case 'json':
          row[c.name] = { url: `https://example.org/${c.name}/${i}`, description: null };
          break;
      }
    }
    rows.push(row);
  }
  return rows;
}
