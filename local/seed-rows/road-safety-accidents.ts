/**
 * Road-safety collisions shaped like the UK Department for Transport's published accident file
 * (`dft-road-casualty-statistics-accident-<year>.csv`, STATS19): its 36 columns under their
 * lower-case names of the 2021+ files, in their order, every value as the CSV holds it (codes as
 * digits, -1 for "missing or out of range", `date` dd/mm/yyyy, `time` HH:MM, a missing location
 * as empty fields). One column is ours: `datetime`, the date and time as one ISO local timestamp,
 * because the pipeline reads timestamps in ISO 8601 only and the event time must be one column
 * (the stats19 R package derives the same `datetime`). test/fixtures/files/README.md names the
 * real sample the shape was taken from.
 */
import { between, pad, pick, pickWeighted, recordRandom, type Random } from './seed-random';

/** The header of the DfT accident files since 2021, in order. */
export const DFT_ACCIDENT_COLUMNS = [
  'accident_index', 'accident_year', 'accident_reference', 'location_easting_osgr', 'location_northing_osgr',
  'longitude', 'latitude', 'police_force', 'accident_severity', 'number_of_vehicles', 'number_of_casualties',
  'date', 'day_of_week', 'time', 'local_authority_district', 'local_authority_ons_district',
  'local_authority_highway', 'first_road_class', 'first_road_number', 'road_type', 'speed_limit',
  'junction_detail', 'junction_control', 'second_road_class', 'second_road_number',
  'pedestrian_crossing_human_control', 'pedestrian_crossing_physical_facilities', 'light_conditions',
  'weather_conditions', 'road_surface_conditions', 'special_conditions_at_site', 'carriageway_hazards',
  'urban_or_rural_area', 'did_police_officer_attend_scene_of_accident', 'trunk_road_flag',
  'lsoa_of_accident_location',
] as const;

/** The generated file's header: the DfT columns, then our ISO `datetime`. */
export const ACCIDENT_COLUMNS: readonly string[] = [...DFT_ACCIDENT_COLUMNS, 'datetime'];

/** Accidents per day: a publisher's later accidents fall on later days. */
export const ACCIDENTS_PER_DAY = 25;
const FIRST_DAY = Date.UTC(2021, 0, 1);

/** Places with their grid reference, coordinates, police force and ONS codes (a few real ones). */
const PLACES = [
  { easting: 530000, northing: 180000, lon: -0.1276, lat: 51.5072, force: 1, district: 1, ons: 'E09000033', lsoa: 'E01004', weight: 6 },
  { easting: 384000, northing: 398000, lon: -2.2426, lat: 53.4808, force: 6, district: 102, ons: 'E08000003', lsoa: 'E01005', weight: 3 },
  { easting: 407000, northing: 287000, lon: -1.8904, lat: 52.4862, force: 20, district: 300, ons: 'E08000025', lsoa: 'E01009', weight: 3 },
  { easting: 430000, northing: 433000, lon: -1.5491, lat: 53.8008, force: 13, district: 204, ons: 'E08000035', lsoa: 'E01011', weight: 2 },
  { easting: 359000, northing: 173000, lon: -2.5879, lat: 51.4545, force: 52, district: 570, ons: 'E06000023', lsoa: 'E01014', weight: 2 },
  { easting: 318000, northing: 176000, lon: -3.1791, lat: 51.4816, force: 62, district: 744, ons: 'W06000015', lsoa: 'W01001', weight: 1 },
  { easting: 259000, northing: 665000, lon: -4.2518, lat: 55.8642, force: 99, district: 926, ons: 'S12000049', lsoa: 'S01010', weight: 2 },
] as const;

const SPEED_BY_ROAD_CLASS: Record<number, readonly number[]> = { 1: [70], 2: [70, 50], 3: [30, 40, 50, 60, 70], 4: [30, 40, 60], 5: [20, 30, 60], 6: [20, 30] };

/** Record `index` (0-based) of the file generated under `seed`. */
export function accidentRecord(index: number, seed: number): Record<string, string> {
  const random = recordRandom(seed, index);
  const place = pickWeighted(random, PLACES.map((p) => [p, p.weight] as const));
  const day = new Date(FIRST_DAY + Math.floor(index / ACCIDENTS_PER_DAY) * 86_400_000);
  const [y, m, d] = [day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate()];
  const hour = pickWeighted(random, Array.from({ length: 24 }, (_, h) => [h, h >= 7 && h <= 19 ? 6 : 1] as const));
  const minute = between(random, 0, 59);
  const severity = pickWeighted(random, [[1, 2], [2, 20], [3, 78]] as const);
  const vehicles = pickWeighted(random, [[1, 30], [2, 55], [3, 11], [4, 4]] as const);
  const casualties = severity === 3 ? pickWeighted(random, [[1, 80], [2, 15], [3, 5]] as const) : between(random, 1, 4);
  const roadClass = pickWeighted(random, [[1, 4], [2, 1], [3, 45], [4, 12], [5, 8], [6, 30]] as const);
  const atJunction = random() < 0.55;
  const reference = `${pad(place.force, 2)}${pad(index, 7)}`;
  const record: Record<string, string> = {
    accident_index: `${y}${reference}`,
    accident_year: String(y),
    accident_reference: reference,
  };
  // About one accident in fifty has no location: the file's fields are empty.
  if (random() >= 0.02) {
    const dx = between(random, -6000, 6000);
    const dy = between(random, -6000, 6000);
    Object.assign(record, {
      location_easting_osgr: String(place.easting + dx),
      location_northing_osgr: String(place.northing + dy),
      longitude: (place.lon + dx / (111_320 * Math.cos((place.lat * Math.PI) / 180))).toFixed(6),
      latitude: (place.lat + dy / 110_574).toFixed(6),
    });
  }
  Object.assign(record, {
    police_force: String(place.force),
    accident_severity: String(severity),
    number_of_vehicles: String(vehicles),
    number_of_casualties: String(casualties),
    date: `${pad(d, 2)}/${pad(m, 2)}/${y}`,
    day_of_week: String(day.getUTCDay() + 1), // DfT: 1 Sunday .. 7 Saturday
    time: `${pad(hour, 2)}:${pad(minute, 2)}`,
    local_authority_district: String(place.district),
    local_authority_ons_district: place.ons,
    local_authority_highway: place.ons,
    first_road_class: String(roadClass),
    first_road_number: roadClass === 6 ? '0' : String(between(random, 1, 6000)),
    road_type: String(pickWeighted(random, [[1, 7], [2, 2], [3, 15], [6, 72], [7, 2], [9, 2]] as const)),
    speed_limit: String(pick(random, SPEED_BY_ROAD_CLASS[roadClass]!)),
    ...junction(random, atJunction),
    pedestrian_crossing_human_control: String(pickWeighted(random, [[0, 95], [1, 2], [2, 1], [-1, 2]] as const)),
    pedestrian_crossing_physical_facilities: String(pickWeighted(random, [[0, 80], [1, 4], [4, 6], [5, 8], [8, 2]] as const)),
    light_conditions: String(hour >= 7 && hour <= 18 ? 1 : pickWeighted(random, [[4, 70], [5, 5], [6, 20], [7, 5]] as const)),
    weather_conditions: String(pickWeighted(random, [[1, 78], [2, 12], [3, 1], [4, 1], [5, 2], [7, 2], [8, 2], [9, 2]] as const)),
    road_surface_conditions: String(pickWeighted(random, [[1, 70], [2, 25], [3, 1], [4, 2], [5, 1], [-1, 1]] as const)),
    special_conditions_at_site: String(pickWeighted(random, [[0, 96], [4, 2], [5, 1], [9, 1]] as const)),
    carriageway_hazards: String(pickWeighted(random, [[0, 97], [2, 2], [7, 1]] as const)),
    urban_or_rural_area: String(place.weight >= 2 && random() < 0.85 ? 1 : 2),
    did_police_officer_attend_scene_of_accident: String(pickWeighted(random, [[1, 75], [2, 20], [3, 5]] as const)),
    trunk_road_flag: String(roadClass <= 2 ? 1 : 2),
    lsoa_of_accident_location: `${place.lsoa}${pad(between(random, 0, 999), 3)}`,
    datetime: `${y}-${pad(m, 2)}-${pad(d, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:00`,
  });
  return record;
}

/** Junction fields: away from a junction there is no control and no second road, as DfT codes it. */
function junction(random: Random, atJunction: boolean): Record<string, string> {
  if (!atJunction) return { junction_detail: '0', junction_control: '-1', second_road_class: '-1', second_road_number: '0' };
  const secondClass = pickWeighted(random, [[3, 30], [4, 15], [5, 10], [6, 45]] as const);
  return {
    junction_detail: String(pickWeighted(random, [[1, 20], [3, 50], [5, 5], [6, 15], [8, 5], [9, 5]] as const)),
    junction_control: String(pickWeighted(random, [[2, 15], [4, 80], [9, 5]] as const)),
    second_road_class: String(secondClass),
    second_road_number: secondClass === 6 ? '0' : String(between(random, 1, 6000)),
  };
}

/**
 * The changes a publisher's next file holds for the record at `position`: every 10th (from the
 * 4th) gains a casualty and becomes serious; every 20th (from the 8th) is withdrawn.
 */
export function accidentChange(position: number): 'update' | 'delete' | undefined {
  if (position % 20 === 7) return 'delete';
  if (position % 10 === 3) return 'update';
  return undefined;
}

export function updatedAccident(record: Record<string, unknown>): Record<string, unknown> {
  return { ...record, number_of_casualties: String(Number(record.number_of_casualties) + 1), accident_severity: '2' };
}
