/**
 * Dataset definitions for tests: a valid minimal default changed by a typed partial, instead of
 * the same inline definition in a dozen files. `testDataset` validates through parseDataset, so a
 * test never carries an invalid definition by accident; `datasetInput` is the unvalidated body, for
 * tests that write it to a file or break it on purpose.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { parseDataset, type ColumnType, type DatasetConfig, type datasetSchema } from '../../runtime/dataset-config';

/** A definition as written in a file: defaults not yet applied. */
export type DatasetInput = z.input<typeof datasetSchema>;
export type ColumnInput = DatasetInput['columns'][number];

/** The nested sections a test changes one field of, keeping the rest (shallowly merged). */
type Sections = 'source' | 'fetch' | 'deletions' | 'delivery' | 'schedule';
export type DatasetOverrides = Partial<Omit<DatasetInput, Sections>> & {
  [S in Sections]?: Partial<NonNullable<DatasetInput[S]>>;
};

export const SF_FIRE_INCIDENTS_FILE = path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json');

/** An example portal no test reaches: the source of every definition built here unless overridden. */
export const EXAMPLE_SOURCE = { domain: 'data.example.org', datasetId: 'abcd-1234' } as const;

/**
 * Columns in declaration order from name → type (`{ id: 'text', ts: 'floating_timestamp' }`).
 * Descriptions or point coordinates are written as column objects instead.
 */
export function columns(types: Readonly<Record<string, ColumnType>>): ColumnInput[] {
  return Object.entries(types).map(([name, type]) => ({ name, type }));
}

/** The columns of the city-permits example (a second dataset beside the fire incidents). */
export const PERMIT_COLUMNS = {
  permit_number: 'text',
  issued_date: 'floating_timestamp',
  status: 'text',
  fee: 'number',
  units: 'integer',
  approved: 'checkbox',
  location: 'point',
} as const satisfies Record<string, ColumnType>;

function merge(base: DatasetInput, overrides: DatasetOverrides): DatasetInput {
  const merged: Record<string, unknown> = { ...base, ...overrides };
  for (const section of ['source', 'fetch', 'deletions', 'delivery', 'schedule'] as const) {
    if (overrides[section] !== undefined) merged[section] = { ...base[section], ...overrides[section] };
  }
  return merged as DatasetInput;
}

/**
 * The smallest valid body (`tiny-set`: key `id` text, event time `ts`), changed by `overrides`.
 * Nested sections (source, fetch, deletions, delivery, schedule) keep their other fields.
 */
export function datasetInput(overrides: DatasetOverrides = {}): DatasetInput {
  const base: DatasetInput = {
    name: 'tiny-set',
    source: { ...EXAMPLE_SOURCE },
    primaryKey: 'id',
    eventTimeColumn: 'ts',
    columns: columns({ id: 'text', ts: 'floating_timestamp' }),
  };
  return merge(base, overrides);
}

/** datasetInput validated: defaults applied; throws DatasetConfigError naming `source` when invalid. */
export function testDataset(overrides: DatasetOverrides = {}, source = 'inline'): DatasetConfig {
  return parseDataset(datasetInput(overrides), source);
}

/** The shipped SF Fire Incidents definition (66 columns), changed by `overrides` and validated. */
export function fireIncidents(overrides: DatasetOverrides = {}): DatasetConfig {
  const shipped = JSON.parse(readFileSync(SF_FIRE_INCIDENTS_FILE, 'utf8')) as DatasetInput;
  return parseDataset(merge(shipped, overrides), SF_FIRE_INCIDENTS_FILE);
}

/** city-permits: a text key, every scalar type and a point, as a portal-made second dataset has. */
export function permitsInput(overrides: DatasetOverrides = {}): DatasetInput {
  return datasetInput({
    name: 'city-permits',
    source: { datasetId: 'perm-1234' },
    primaryKey: 'permit_number',
    eventTimeColumn: 'issued_date',
    columns: columns(PERMIT_COLUMNS),
    ...overrides,
  });
}

/** A definition read through SODA 3 (which needs an app token secret). */
export function soda3Input(overrides: DatasetOverrides = {}): DatasetInput {
  return datasetInput({ ...overrides, source: { api: 'soda3', appTokenSecretName: 'soda3/token', ...overrides.source } });
}
