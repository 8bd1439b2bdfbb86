/**
 * Daily NDJSON files of shared-vehicle events landed in S3 (`2026-12-01/events.ndjson`, one
 * object per day): `register`, `update` (battery, position) and `deregister`, each
 * `{ "event", "at", "data": { "id", "provider", "model", "battery", "location": { "lat", "lng" } } }`
 * with numbers as numbers. The fleet is simulated in record order, so a vehicle is registered
 * before it reports and reports nothing after it is deregistered.
 *
 * On purpose, every 97th record (the 97th, 194th, ...) lacks one part of the key (`event`, then
 * `data.id`, then `at`, in turn): the S3 adapter quarantines such rows (missing_primary_key), so
 * a run over N records delivers N - keylessEventCount(N) rows. These records change no vehicle.
 */
import { between, pad, pick, recordRandom } from './seed-random';

export const EVENTS_PER_DAY = 100;
/** Every KEYLESS_EVERY-th record lacks a key part. */
export const KEYLESS_EVERY = 97;
const FIRST_DAY = Date.UTC(2026, 11, 1);

const PROVIDERS = [
  { name: 'lime', models: ['Gen4 scooter', 'Gen3 e-bike'] },
  { name: 'tier', models: ['Tier 5', 'Tier e-bike'] },
  { name: 'voi', models: ['Voiager 5', 'Voi e-bike'] },
  { name: 'dott', models: ['Dott V3'] },
] as const;
const CITY = { lat: 52.52, lng: 13.405 };

export interface VehicleEvent {
  event?: 'register' | 'update' | 'deregister';
  at?: string;
  data: { id?: string; provider: string; model: string; battery: number; location: { lat: number; lng: number } };
}

/** The key part record `index` lacks, if it is one of the keyless ones. */
export function missingKeyPart(index: number): 'event' | 'data.id' | 'at' | undefined {
  if (index % KEYLESS_EVERY !== KEYLESS_EVERY - 1) return undefined;
  return (['event', 'data.id', 'at'] as const)[Math.floor(index / KEYLESS_EVERY) % 3];
}

/** How many of the first `records` records lack a key part (and are quarantined). */
export const keylessEventCount = (records: number): number => Math.floor(records / KEYLESS_EVERY);

/** The number of records a run of `rows` holds: whole days (an object is never appended to). */
export const wholeDays = (rows: number): number => Math.ceil(Math.max(0, rows) / EVENTS_PER_DAY) * EVENTS_PER_DAY;

/** The S3 object (relative to the prefix) record `index` lands in. */
export function eventObject(index: number): string {
  const day = new Date(FIRST_DAY + Math.floor(index / EVENTS_PER_DAY) * 86_400_000);
  return `${day.toISOString().slice(0, 10)}/events.ndjson`;
}

interface Vehicle {
  id: string;
  provider: (typeof PROVIDERS)[number];
  model: string;
  battery: number;
  lat: number;
  lng: number;
}

/** The events of `records` records (whole days), in order, with the object each lands in. */
export function* vehicleEvents(records: number, seed: number): Generator<{ record: VehicleEvent; object: string }> {
  const active: Vehicle[] = [];
  let registered = 0;
  const total = wholeDays(records);
  for (let i = 0; i < total; i++) {
    const random = recordRandom(seed, i);
    const dayStart = FIRST_DAY + Math.floor(i / EVENTS_PER_DAY) * 86_400_000;
    // Strictly increasing within the day: slot i of the day, plus up to 13 minutes.
    const at = new Date(dayStart + (i % EVENTS_PER_DAY) * 14 * 60_000 + between(random, 0, 13 * 60 + 59) * 1000).toISOString().replace('.000Z', 'Z');
    const roll = random();
    let event: NonNullable<VehicleEvent['event']>;
    let vehicle: Vehicle;
    if (active.length < 5 || roll < 0.08) {
      const provider = pick(random, PROVIDERS);
      vehicle = {
        id: `V-${pad(registered + 1, 5)}`,
        provider,
        model: pick(random, provider.models),
        battery: between(random, 80, 100),
        lat: round(CITY.lat + (random() - 0.5) * 0.2, 6),
        lng: round(CITY.lng + (random() - 0.5) * 0.3, 6),
      };
      event = 'register';
    } else {
      vehicle = active[Math.floor(random() * active.length)]!;
      event = roll < 0.11 ? 'deregister' : 'update';
    }
    const missing = missingKeyPart(i);
    if (!missing) {
      if (event === 'register') {
        registered++;
        active.push(vehicle);
      } else if (event === 'deregister') {
        active.splice(active.indexOf(vehicle), 1);
      } else {
        vehicle.battery = Math.max(0, vehicle.battery - between(random, 0, 9));
        vehicle.lat = round(vehicle.lat + (random() - 0.5) * 0.01, 6);
        vehicle.lng = round(vehicle.lng + (random() - 0.5) * 0.01, 6);
      }
    }
    const record: VehicleEvent = {
      event,
      at,
      data: { id: vehicle.id, provider: vehicle.provider.name, model: vehicle.model, battery: vehicle.battery, location: { lat: vehicle.lat, lng: vehicle.lng } },
    };
    if (missing === 'event') delete record.event;
    else if (missing === 'at') delete record.at;
    else if (missing === 'data.id') delete record.data.id;
    yield { record, object: eventObject(i) };
  }
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;
