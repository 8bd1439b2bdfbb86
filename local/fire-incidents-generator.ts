/**
 * Deterministic, realistic SF Fire Incidents rows, shaped like the Socrata API serves them with
 * `$select=:*,*`: every scalar a string, nulls omitted, `point` as GeoJSON (some missing), the
 * 66 real column names, system fields `:id`, `:created_at`, `:updated_at`. Used by the local
 * Socrata server, and directly by tests to compute expected values.
 */

export type FireIncidentRow = Record<string, unknown>;

/** mulberry32: small, fast, good enough for test data, identical on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BATTALIONS = ['B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B09', 'B10'];
const NEIGHBORHOODS = [
  'Bayview Hunters Point', 'Bernal Heights', 'Castro/Upper Market', 'Chinatown', 'Excelsior',
  'Financial District/South Beach', 'Glen Park', 'Haight Ashbury', 'Hayes Valley', 'Inner Richmond',
  'Inner Sunset', 'Japantown', 'Lakeshore', 'Lone Mountain/USF', 'Marina', 'Mission', 'Mission Bay',
  'Nob Hill', 'Noe Valley', 'North Beach', 'Oceanview/Merced/Ingleside', 'Outer Mission',
  'Outer Richmond', 'Pacific Heights', 'Portola', 'Potrero Hill', 'Presidio Heights', 'Russian Hill',
  'South of Market', 'Sunset/Parkside', 'Tenderloin', 'Treasure Island', 'Twin Peaks',
  'Visitacion Valley', 'West of Twin Peaks', 'Western Addition',
];
const ZIPCODES = [
  '94102', '94103', '94104', '94105', '94107', '94108', '94109', '94110', '94111', '94112', '94114',
  '94115', '94116', '94117', '94118', '94121', '94122', '94123', '94124', '94127', '94129', '94130',
  '94131', '94132', '94133', '94134', '94158',
];
const STREETS = [
  'MARKET ST', 'MISSION ST', 'PINE STREET', 'GEARY BLVD', 'VAN NESS AVE', 'POLK ST', 'FOLSOM ST',
  'HOWARD ST', 'BRYANT ST', '3RD ST', 'TARAVAL ST', 'IRVING ST', 'JUDAH ST', 'CLEMENT ST', 'FILLMORE ST',
  'DIVISADERO ST', 'HAIGHT ST', 'VALENCIA ST', 'CESAR CHAVEZ ST', 'OCEAN AVE', 'SAN BRUNO AVE',
  'LOMBARD ST', 'COLUMBUS AVE', 'STOCKTON ST', 'EDDY ST', 'ELLIS ST', 'OFARRELL ST', 'TURK ST',
];
/** Weighted: service calls, alarms and medical assists dominate, fires are a few percent. */
const SITUATIONS: [string, number][] = [
  ['500 Service Call, other', 10],
  ['745 Alarm system activation, no fire - unintentional', 12],
  ['743 Smoke detector activation, no fire - unintentional', 7],
  ['735 Alarm system sounded due to malfunction', 5],
  ['700 False alarm or false call, other', 6],
  ['311 Medical assist, assist EMS crew', 14],
  ['611 Dispatched & cancelled en route', 9],
  ['651 Smoke scare, odor of smoke', 4],
  ['322 Motor vehicle accident with injuries', 4],
  ['553 Public service', 4],
  ['552 Police matter', 3],
  ['412 Gas leak (natural gas or LPG)', 3],
  ['444 Power line down', 2],
  ['671 HazMat release investigation w/no HazMat', 2],
  ['413 Oil or other combustible liquid spill', 1],
  ['561 Unauthorized burning', 1],
  ['111 Building fire', 3],
  ['113 Cooking fire, confined to container', 2],
  ['118 Trash or rubbish fire, contained', 2],
  ['131 Passenger vehicle fire', 1],
  ['151 Outside rubbish, trash or waste fire', 2],
];
const SITUATION_TOTAL = SITUATIONS.reduce((s, [, w]) => s + w, 0);
const ACTIONS = ['86 Investigate', '70 Assistance, other', '93 Cancelled en route', '64 Shut down system', '32 Provide basic life support (BLS)', '52 Forcible entry', '82 Notify other agencies.'];
const FIRE_ACTIONS = ['11 Extinguish', '12 Salvage & overhaul', '86 Investigate'];
const PROPERTY_USES = [
  '429 Multifamily dwellings', '419 1 or 2 family dwelling', '962 Residential street, road or residential driveway',
  '963 Street or road in commercial area', '500 Mercantile, business, other', '161 Restaurant or cafeteria',
  '960 Street, other', '599 Business office', '311 24-hour care Nursing homes, 4 or more persons', '400 Residential, other',
];
const UNIT_PREFIXES = ['E', 'E', 'E', 'T', 'T', 'M', 'RC', 'B'];

export interface GeneratorOptions {
  seed?: number;
  /** Alarm time of the first incident (UTC-less local time, like the source). */
  start?: Date;
  /** Mean minutes between incidents. */
  minutesBetweenIncidents?: number;
  /** `:updated_at` of the first load batch. */
  loadedAt?: Date;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
/** Socrata floating timestamp: `2023-06-04T14:16:36.000`, no zone. */
export const floating = (d: Date): string => d.toISOString().slice(0, 23);

const B36 = 36 ** 8;
function rowId(index: number, seed: number): string {
  // An odd multiplier not divisible by 3 is a bijection modulo 36^8: ids never collide.
  const v = (((index + 46_656) * 2654435761 + seed * 7919) % B36 + B36) % B36;
  const s = v.toString(36).padStart(8, '0');
  return `row-${s.slice(0, 4)}-${s.slice(4)}`;
}

/** Every column in source order, all absent: one object shape for every row keeps generation fast. */
function blankRow(system: Record<string, string>): Record<string, unknown> {
  return {
    ':id': system[':id'],
    ':created_at': system[':created_at'],
    ':updated_at': system[':updated_at'],
    incident_number: undefined,
    exposure_number: undefined,
    id: undefined,
    address: undefined,
    incident_date: undefined,
    call_number: undefined,
    alarm_dttm: undefined,
    arrival_dttm: undefined,
    close_dttm: undefined,
    city: undefined,
    zipcode: undefined,
    battalion: undefined,
    station_area: undefined,
    box: undefined,
    suppression_units: undefined,
    suppression_personnel: undefined,
    ems_units: undefined,
    ems_personnel: undefined,
    other_units: undefined,
    other_personnel: undefined,
    first_unit_on_scene: undefined,
    estimated_property_loss: undefined,
    estimated_contents_loss: undefined,
    fire_fatalities: undefined,
    fire_injuries: undefined,
    civilian_fatalities: undefined,
    civilian_injuries: undefined,
    number_of_alarms: undefined,
    primary_situation: undefined,
    mutual_aid: undefined,
    action_taken_primary: undefined,
    action_taken_secondary: undefined,
    action_taken_other: undefined,
    detector_alerted_occupants: undefined,
    property_use: undefined,
    area_of_fire_origin: undefined,
    ignition_cause: undefined,
    ignition_factor_primary: undefined,
    ignition_factor_secondary: undefined,
    heat_source: undefined,
    item_first_ignited: undefined,
    human_factors_associated_with_ignition: undefined,
    structure_type: undefined,
    structure_status: undefined,
    floor_of_fire_origin: undefined,
    fire_spread: undefined,
    no_flame_spread: undefined,
    number_of_floors_with_minimum_damage: undefined,
    number_of_floors_with_significant_damage: undefined,
    number_of_floors_with_heavy_damage: undefined,
    number_of_floors_with_extreme_damage: undefined,
    detectors_present: undefined,
    detector_type: undefined,
    detector_operation: undefined,
    detector_effectiveness: undefined,
    detector_failure_reason: undefined,
    automatic_extinguishing_system_present: undefined,
    automatic_extinguishing_sytem_type: undefined,
    automatic_extinguishing_sytem_perfomance: undefined,
    automatic_extinguishing_sytem_failure_reason: undefined,
    number_of_sprinkler_heads_operating: undefined,
    supervisor_district: undefined,
    neighborhood_district: undefined,
    point: undefined,
    data_as_of: undefined,
    data_loaded_at: undefined,
  };
}

/** The row as the API serves it: absent fields omitted (JSON.parse builds such objects fast). */
const sparse = (row: Record<string, unknown>): FireIncidentRow => JSON.parse(JSON.stringify(row)) as FireIncidentRow;

/** A stateful source of incident rows: successive calls continue the same incident sequence. */
export class FireIncidentGenerator {
  private readonly rand: () => number;
  private rowIndex = 0;
  private incidentTime: number;
  private readonly yearSeq = new Map<number, number>();
  private pendingExposures: FireIncidentRow[] = [];
  private loadTime: number;
  private loadBatchLeft = 0;
  readonly seed: number;

  constructor(options: GeneratorOptions = {}) {
    this.seed = options.seed ?? 1;
    this.rand = seededRandom(this.seed);
    this.incidentTime = (options.start ?? new Date('2018-01-01T00:00:00Z')).getTime();
    this.firstIncidentTime = this.incidentTime;
    this.minutes = options.minutesBetweenIncidents ?? 16;
    this.loadTime = (options.loadedAt ?? new Date('2024-01-02T03:04:05.000Z')).getTime();
    this.horizon = this.loadTime;
  }
  private readonly firstIncidentTime: number;
  /** Incidents happen before the data is loaded: never in the future, whatever the row count. */
  private readonly horizon: number;
  private readonly minutes: number;

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }
  private int(min: number, max: number): number {
    return min + Math.floor(this.rand() * (max - min + 1));
  }

  /** System fields for a new row: rows are loaded in batches that share one `:updated_at`. */
  private system(): { ':id': string; ':created_at': string; ':updated_at': string } {
    if (this.loadBatchLeft <= 0) {
      this.loadTime += this.int(1, 120) * 1000 + this.int(0, 999);
      this.loadBatchLeft = this.int(1, 400);
    }
    this.loadBatchLeft--;
    const at = new Date(this.loadTime).toISOString();
    return { ':id': rowId(this.rowIndex++, this.seed), ':created_at': at, ':updated_at': at };
  }

  /** The next row (an incident's exposure 0, or a further exposure of the previous incident). */
  next(): FireIncidentRow {
    return sparse(this.nextDense());
  }

  /**
   * The next row with every column present, absent ones `undefined`: `JSON.stringify` gives the
   * same text as for `next()`, without the copy `next()` makes (the compact server serializes each
   * row once and never holds the objects, so the copy would be pure cost).
   */
  nextDense(): FireIncidentRow {
    const queued = this.pendingExposures.shift();
    if (queued) {
      Object.assign(queued, this.system());
      return queued;
    }
    const row = this.incident(this.system());
    // A few incidents have exposures (fires spreading to neighbouring buildings): same incident, exposure 1, 2.
    const exposures = this.rand() < 0.03 ? this.int(1, 2) : 0;
    for (let e = 1; e <= exposures; e++) {
      const copy = { ...row };
      copy.exposure_number = String(e);
      copy.id = `${row.incident_number as string}${e}`;
      this.pendingExposures.push(copy);
    }
    return row;
  }

  private incident(system: Record<string, string>): Record<string, unknown> {
    this.incidentTime += Math.round((0.2 + this.rand() * 1.6) * this.minutes * 60_000);
    // Past the load time (about 200,000 incidents at the default pace), start over at the first
    // year; incident numbers stay unique because each year's sequence keeps counting.
    if (this.incidentTime >= this.horizon) this.incidentTime = this.firstIncidentTime + (this.incidentTime - this.horizon);
    const alarm = new Date(Math.floor(this.incidentTime / 1000) * 1000);
    const year = alarm.getUTCFullYear();
    const seq = (this.yearSeq.get(year) ?? 0) + 1;
    this.yearSeq.set(year, seq);
    const yy = pad(year % 100);
    const incidentNumber = `${yy}${pad(seq, 6)}`;
    const dayOfYear = Math.floor((alarm.getTime() - Date.UTC(year, 0, 1)) / 86_400_000) + 1;

    let r = this.rand() * SITUATION_TOTAL;
    let situation = SITUATIONS[0]![0];
    for (const [s, w] of SITUATIONS) {
      if ((r -= w) < 0) {
        situation = s;
        break;
      }
    }
    const isFire = situation.startsWith('1');
    const cancelled = situation.startsWith('611');
    const row = blankRow(system);
    row.incident_number = incidentNumber;
    row.exposure_number = '0';
    row.id = `${incidentNumber}0`;
    row.address = this.rand() < 0.6 ? `${this.int(1, 45) * 100 + this.int(0, 99)} ${this.pick(STREETS)}` : this.pick(STREETS);
    row.incident_date = `${alarm.toISOString().slice(0, 10)}T00:00:00.000`;
    row.call_number = `${yy}${pad(dayOfYear, 3)}${pad(this.int(0, 9999), 4)}`;
    row.alarm_dttm = floating(alarm);
    let last = alarm.getTime();
    if (!cancelled || this.rand() < 0.2) {
      last += this.int(90, 900) * 1000; // arrival 1.5-15 minutes after the alarm
      row.arrival_dttm = floating(new Date(last));
    }
    last += (isFire ? this.int(20, 240) : this.int(2, 60)) * 60_000 + this.int(0, 59) * 1000;
    row.close_dttm = floating(new Date(last));
    const cityRoll = this.rand();
    if (cityRoll < 0.9) row.city = 'San Francisco';
    else if (cityRoll < 0.97) row.city = 'SF';
    else if (cityRoll < 0.98) row.city = 'Treasure Isla';
    if (this.rand() < 0.97) row.zipcode = this.pick(ZIPCODES);
    row.battalion = this.pick(BATTALIONS);
    row.station_area = pad(this.int(1, 51));
    if (this.rand() < 0.95) row.box = pad(this.int(1, 9999), 4);
    const supUnits = isFire ? this.int(2, 12) : this.int(0, 3);
    row.suppression_units = String(supUnits);
    row.suppression_personnel = String(supUnits * this.int(3, 5));
    const ems = this.rand() < 0.3 ? this.int(1, 2) : 0;
    row.ems_units = String(ems);
    row.ems_personnel = String(ems * 2);
    const other = this.rand() < 0.1 ? 1 : 0;
    row.other_units = String(other);
    row.other_personnel = String(other * this.int(1, 2));
    if (!cancelled && this.rand() < 0.9) row.first_unit_on_scene = `${this.pick(UNIT_PREFIXES)}${pad(this.int(1, 44))}`;
    if (isFire || this.rand() < 0.05) {
      row.estimated_property_loss = String(isFire ? this.int(0, 200) * 500 : 0);
      row.estimated_contents_loss = String(isFire ? this.int(0, 100) * 250 : 0);
    }
    row.fire_fatalities = '0';
    row.fire_injuries = String(isFire && this.rand() < 0.05 ? 1 : 0);
    row.civilian_fatalities = String(isFire && this.rand() < 0.005 ? 1 : 0);
    row.civilian_injuries = String(isFire && this.rand() < 0.08 ? this.int(1, 3) : 0);
    row.number_of_alarms = String(isFire && this.rand() < 0.05 ? this.int(2, 3) : 1);
    row.primary_situation = situation;
    row.mutual_aid = this.rand() < 0.99 ? 'N None' : '3 Mutual aid given';
    row.action_taken_primary = isFire ? this.pick(FIRE_ACTIONS) : this.pick(ACTIONS);
    if (this.rand() < 0.25) row.action_taken_secondary = this.rand() < 0.5 ? '-' : this.pick(ACTIONS);
    if (this.rand() < 0.05) row.action_taken_other = '-';
    row.property_use = this.pick(PROPERTY_USES);
    if (isFire) {
      row.detector_alerted_occupants = this.rand() < 0.5 ? '1 Detector alerted occupants' : 'U Unknown';
      row.area_of_fire_origin = this.pick(['24 Cooking area, kitchen', '21 Bedroom', '81 Exterior, exposed surface', '94 Trash, rubbish area']);
      row.ignition_cause = this.pick(['1 Intentional', '2 Unintentional', '3 Failure of equipment or heat source', 'U Cause undetermined after investigation']);
      row.ignition_factor_primary = this.pick(['12 Heat source too close to combustibles', '10 Misuse of material or product, other', 'UU Undetermined']);
      row.heat_source = this.pick(['10 Heat from powered equipment, other', '61 Cigarette', '43 Hot ember or ash', 'UU Undetermined']);
      row.item_first_ignited = this.pick(['76 Cooking materials, including edible materials', '96 Rubbish, trash, or waste', '21 Upholstered sofa, chair, vehicle seats']);
      row.human_factors_associated_with_ignition = this.pick(['N None', '1 Asleep', '2 Possibly impaired by alcohol or drugs']);
      if (situation.startsWith('11')) {
        row.structure_type = '1 Enclosed building';
        row.structure_status = '2 In normal use';
        row.floor_of_fire_origin = String(this.int(1, 6));
        row.fire_spread = this.pick(['1 Confined to object of origin', '2 Confined to room of origin', '3 Confined to floor of origin']);
        row.number_of_floors_with_minimum_damage = String(this.int(0, 1));
        row.number_of_floors_with_significant_damage = String(this.int(0, 1));
        row.number_of_floors_with_heavy_damage = '0';
        row.number_of_floors_with_extreme_damage = '0';
        row.detectors_present = this.pick(['1 Present', 'N None present', 'U Undetermined']);
        if (row.detectors_present === '1 Present') {
          row.detector_type = this.pick(['1 Smoke', '3 Combination smoke - heat']);
          row.detector_operation = this.pick(['2 Detector operated', '3 Detector did not operate']);
          row.detector_effectiveness = '1 Alerted occupants, occupants responded';
          if (row.detector_operation === '3 Detector did not operate') row.detector_failure_reason = this.pick(['4 Battery missing or disconnected', 'U Undetermined']);
        }
        row.automatic_extinguishing_system_present = this.pick(['N None Present', '1 Present']);
        if (row.automatic_extinguishing_system_present === '1 Present') {
          row.automatic_extinguishing_sytem_type = '1 Wet-pipe sprinkler';
          row.automatic_extinguishing_sytem_perfomance = this.pick(['1 Operated and effective', '4 Fire too small to activate']);
          row.number_of_sprinkler_heads_operating = String(this.int(0, 2));
        }
      } else {
        row.no_flame_spread = this.pick(['-', 'NA']);
      }
    } else {
      row.no_flame_spread = 'NA';
    }
    row.supervisor_district = String(this.int(1, 11));
    row.neighborhood_district = this.pick(NEIGHBORHOODS);
    if (this.rand() < 0.95) {
      const lon = Math.round((-122.512 + this.rand() * 0.15) * 1e6) / 1e6;
      const lat = Math.round((37.708 + this.rand() * 0.1) * 1e6) / 1e6;
      row.point = { type: 'Point', coordinates: [lon, lat] };
    }
    row.data_as_of = row.close_dttm;
    row.data_loaded_at = '2025-07-04T02:21:18.000';
    return row;
  }
}

/** `rows` generated rows for a seed: the same arguments always give the same rows. */
export function generateFireIncidents({ rows, seed = 1, ...options }: { rows: number } & GeneratorOptions): FireIncidentRow[] {
  const gen = new FireIncidentGenerator({ seed, ...options });
  const out: FireIncidentRow[] = new Array(rows);
  for (let i = 0; i < rows; i++) out[i] = gen.next();
  return out;
}

/** The 66 column names and Socrata types, as `/api/views/<id>.json` lists them. */
export const FIRE_INCIDENT_COLUMNS: { fieldName: string; dataTypeName: string }[] = [
  ...'incident_number exposure_number id address incident_date call_number alarm_dttm arrival_dttm close_dttm city zipcode battalion station_area box suppression_units suppression_personnel ems_units ems_personnel other_units other_personnel first_unit_on_scene estimated_property_loss estimated_contents_loss fire_fatalities fire_injuries civilian_fatalities civilian_injuries number_of_alarms primary_situation mutual_aid action_taken_primary action_taken_secondary action_taken_other detector_alerted_occupants property_use area_of_fire_origin ignition_cause ignition_factor_primary ignition_factor_secondary heat_source item_first_ignited human_factors_associated_with_ignition structure_type structure_status floor_of_fire_origin fire_spread no_flame_spread number_of_floors_with_minimum_damage number_of_floors_with_significant_damage number_of_floors_with_heavy_damage number_of_floors_with_extreme_damage detectors_present detector_type detector_operation detector_effectiveness detector_failure_reason automatic_extinguishing_system_present automatic_extinguishing_sytem_type automatic_extinguishing_sytem_perfomance automatic_extinguishing_sytem_failure_reason number_of_sprinkler_heads_operating supervisor_district neighborhood_district point data_as_of data_loaded_at'
    .split(' ')
    .map((fieldName) => ({ fieldName, dataTypeName: columnType(fieldName) })),
];

function columnType(name: string): string {
  if (name === 'point') return 'point';
  if (/^(incident_date|alarm_dttm|arrival_dttm|close_dttm|data_as_of|data_loaded_at)$/.test(name)) return 'floating_timestamp';
  if (/(_units|_personnel|_loss|fatalities|injuries|number_of_|floor_of_fire_origin|exposure_number)/.test(name)) return 'number';
  return 'text';
}
