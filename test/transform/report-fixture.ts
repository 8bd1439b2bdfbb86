/** A dataset without marts whose warning tests fail, and its rows: the report's failing values and column profile. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDataset, type DatasetConfig } from '../../runtime/dataset-config';
import { incident, type RawRow } from './raw-fixture';

const DATASET_FILE = path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json');

/**
 * The SF dataset under another name (so no marts: the column profile runs) with two warning
 * tests that fail: battalion in ('B01') and neighborhood_district not null.
 */
export function profiledDataset(): DatasetConfig {
  const json = JSON.parse(readFileSync(DATASET_FILE, 'utf8')) as { dataTests: unknown[] };
  return parseDataset(
    {
      ...json,
      name: 'sf-fire-profiled',
      dataTests: [
        ...json.dataTests,
        { kind: 'accepted_values', column: 'battalion', values: ['B01'], severity: 'warn' },
        { kind: 'not_null', column: 'neighborhood_district', severity: 'warn' },
      ],
    },
    'profiled',
  );
}

/**
 * 46 rows: battalions B01..B10 (10 each, one B01 renamed to an HTML tag), six more single ones
 * (Z0..Z5), and two rows without a neighborhood.
 */
export function profiledRows(): RawRow[] {
  const rows = Array.from({ length: 40 }, (_, i) => incident(i, i === 0 ? { battalion: '<b>X</b>' } : {}));
  for (const i of [5, 7]) delete rows[i]!.neighborhood_district;
  return [...rows, ...Array.from({ length: 6 }, (_, k) => incident(40 + k, { battalion: `Z${k}` }))];
}

/** The value a report page shows beside `label` in its facts tables; undefined when it has no such row. */
export const reportFact = (html: string, label: string): string | undefined =>
  new RegExp(`<th>${label.replace(/[()/]/g, '\\$&')}</th><td[^>]*>([^<]*)`).exec(html)?.[1];

/** What both engines must show as the examples of the two failing tests. */
export const EXPECTED_SAMPLES = {
  accepted_values_battalion: {
    kind: 'values',
    columns: ['battalion', 'rows'],
    rows: [['B02', 10], ['B03', 10], ['B10', 10], ['<b>X</b>', 1], ['Z0', 1]],
  },
  not_null_neighborhood_district: { kind: 'rows', columns: ['id', 'neighborhood_district'], rows: [['1000050', null], ['1000070', null]] },
};
