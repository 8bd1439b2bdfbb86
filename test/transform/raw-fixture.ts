/** Writes raw-zone objects the way Firehose does (gzipped NDJSON under ingest_date partitions). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export type RawRow = Record<string, unknown>;

/** Write one raw object; `lines` may hold raw strings (to inject malformed lines). Returns its key. */
export function writeRawObject(rawDir: string, dataset: string, ingestDate: string, name: string, lines: (RawRow | string)[]): string {
  const key = `raw/${dataset}/ingest_date=${ingestDate}/${name}.gz`;
  const file = path.join(rawDir, key);
  mkdirSync(path.dirname(file), { recursive: true });
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
  writeFileSync(file, gzipSync(text));
  return key;
}

const BATTALIONS = ['B01', 'B02', 'B03', 'B10'];
const NEIGHBORHOODS = ['Mission', 'Nob Hill', 'Tenderloin'];
const SITUATIONS = ['111 Building fire', '500 Service Call, other', '700 False alarm'];

const pad = (n: number): string => String(n).padStart(2, '0');

/** A fire-incident row shaped like the fetcher's output (strings, nulls omitted, GeoJSON point). */
export function incident(i: number, overrides: RawRow = {}, version = 0): RawRow {
  const year = 2022 + (i % 3);
  const month = 1 + (i % 12);
  const day = 1 + (i % 27);
  const alarmMin = i % 50;
  const responseSec = 120 + ((i * 37) % 600);
  const alarm = new Date(Date.UTC(year, month - 1, day, 10, alarmMin, 0));
  const arrival = new Date(alarm.getTime() + responseSec * 1000);
  const floating = (d: Date): string => d.toISOString().replace('Z', '').replace(/\.\d+$/, '.000');
  const row: RawRow = {
    incident_number: String(100000 + i),
    exposure_number: '0',
    id: `${100000 + i}0`,
    address: `${i} MARKET ST`,
    incident_date: `${year}-${pad(month)}-${pad(day)}T00:00:00.000`,
    alarm_dttm: floating(alarm),
    arrival_dttm: floating(arrival),
    battalion: BATTALIONS[i % BATTALIONS.length],
    suppression_units: String(i % 4),
    estimated_property_loss: String((i % 5) * 1000),
    fire_fatalities: String(i % 7 === 0 ? 1 : 0),
    civilian_injuries: String(i % 5 === 0 ? 2 : 0),
    primary_situation: SITUATIONS[i % SITUATIONS.length],
    neighborhood_district: NEIGHBORHOODS[i % NEIGHBORHOODS.length],
    _ingested_at: `2024-03-0${1 + version}T00:00:00.000Z`,
    _run_id: `run-${version}`,
    _source_updated_at: `2024-02-0${1 + version}T00:00:00.000Z`,
    _source_id: `row-${i}`,
  };
  if (i % 4 !== 3) {
    const lon = -122.45 + (i % 10) / 100;
    const lat = 37.75 + (i % 10) / 100;
    Object.assign(row, { point: { type: 'Point', coordinates: [lon, lat] }, longitude: lon, latitude: lat });
  }
  return { ...row, ...overrides };
}
