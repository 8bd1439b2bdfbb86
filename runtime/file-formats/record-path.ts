/**
 * Nested fields as columns: `valueAt(record, 'data.location.lat')`, and composite keys
 * (`["on", "data.id", "at"]`) that say which part is missing.
 *
 * A path is split at dots. At each level the longest run of segments that is a key of the object
 * there wins, so a field whose name itself holds a dot (`{"data.id": 7}`, or a CSV column
 * `data.id`) is still reached by the path `data.id`; otherwise segments go one level down each.
 * An array is indexed by a segment that is a whole number (`items.0.sku`).
 */

export type RecordPath = (record: unknown) => unknown;

/** Compiles a dotted path once; the hot loop calls the result per record. */
export function compilePath(path: string): RecordPath {
  const segments = path.split('.');
  if (!path || segments.some((s) => s === '')) {
    throw new Error(`invalid field path ${JSON.stringify(path)}: segments are separated by single dots, none empty`);
  }
  if (segments.length === 1) {
    return (record) => (isObject(record) && Object.hasOwn(record, path) ? record[path] : undefined);
  }
  // joined[i][j]: segments i..j joined by dots, built once.
  const joined = segments.map((_, i) => segments.map((__, j) => (j >= i ? segments.slice(i, j + 1).join('.') : '')));
  const n = segments.length;
  return (record) => {
    let at: unknown = record;
    let i = 0;
    while (i < n) {
      if (Array.isArray(at)) {
        const seg = segments[i]!;
        if (!/^(0|[1-9]\d*)$/.test(seg)) return undefined;
        at = at[Number(seg)];
        i++;
        continue;
      }
      if (!isObject(at)) return undefined;
      const obj = at;
      let j = n - 1;
      while (j >= i && !Object.hasOwn(obj, joined[i]![j]!)) j--;
      if (j < i) return undefined;
      at = obj[joined[i]![j]!];
      i = j + 1;
    }
    return at;
  };
}

/** The value at a dotted path, or undefined when any level is absent. */
export function valueAt(record: unknown, path: string): unknown {
  return compilePath(path)(record);
}

export type KeyValue = string | number | boolean;

/** Why one part of a key cannot be loaded (the reasons are those of the fetcher's quarantine). */
export interface KeyPartProblem {
  part: string;
  reason: 'missing_primary_key' | 'invalid_primary_key';
  detail: string;
}

export type KeyResult = { ok: true; values: KeyValue[] } | { ok: false; problems: KeyPartProblem[] };

/**
 * A function giving a record's key: every part's value, or every part that is missing (absent,
 * null or '') or not a scalar (an object or array), so a quarantined row says all that is wrong.
 */
export function keyExtractor(parts: string | readonly string[]): (record: unknown) => KeyResult {
  const names = typeof parts === 'string' ? [parts] : [...parts];
  if (!names.length) throw new Error('a key needs at least one part');
  const twice = names.find((p, i) => names.indexOf(p) !== i);
  if (twice !== undefined) throw new Error(`key part ${JSON.stringify(twice)} is named twice`);
  const paths = names.map(compilePath);
  return (record) => {
    const values: KeyValue[] = [];
    let problems: KeyPartProblem[] | undefined;
    for (let k = 0; k < paths.length; k++) {
      const value = paths[k]!(record);
      const part = names[k]!;
      if (value === undefined || value === null || value === '') {
        (problems ??= []).push({ part, reason: 'missing_primary_key', detail: `key part "${part}" is ${value === '' ? 'empty' : 'absent'}` });
      } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        values.push(value);
      } else {
        const what = Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
        const text = typeof value === 'object' ? `: ${JSON.stringify(value).slice(0, 100)}` : '';
        (problems ??= []).push({ part, reason: 'invalid_primary_key', detail: `key part "${part}" is ${what}, not a text, number or boolean${text}` });
      }
    }
    return problems ? { ok: false, problems } : { ok: true, values };
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
