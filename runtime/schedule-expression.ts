/**
 * EventBridge Scheduler expressions and time zones, checked at validation time: a bad one would
 * otherwise pass `cdk synth` and only fail at deploy (or, for a valid-looking but wrong cron,
 * never fire). Syntax from the Scheduler user guide ("Schedule types"):
 *   cron(minutes hours day-of-month month day-of-week year)
 *   rate(value unit)   unit: minute(s) | hour(s) | day(s); singular exactly when value is 1
 *   at(yyyy-mm-ddThh:mm:ss)   a one-time schedule
 */

interface CronField {
  name: string;
  min: number;
  max: number;
  /** Names accepted in place of numbers (JAN=1, SUN=1, as in Scheduler). */
  names?: readonly string[];
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 1, max: 7, names: DAYS },
  { name: 'year', min: 1970, max: 2199 },
];

function value(field: CronField, text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= field.min && n <= field.max ? n : undefined;
  }
  const i = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return i >= 0 ? field.min + i : undefined;
}

const range = (f: CronField) => `${f.min}-${f.max}${f.names ? ` or ${f.names[0]}-${f.names[f.names.length - 1]}` : ''}`;

/** One comma-separated item of a field: `*`, `v`, `a-b`, any of those `/step`, or a special form. */
function checkItem(field: CronField, item: string): string | undefined {
  if (field.name === 'day-of-month' && /^(L|LW|\d{1,2}W)$/i.test(item)) {
    const d = item.match(/^(\d+)W$/i)?.[1];
    return d === undefined || value(field, d) !== undefined ? undefined : `"${item}": day ${d} is not in 1-31`;
  }
  if (field.name === 'day-of-week') {
    const nth = item.match(/^(\w+)#(\d+)$/);
    if (nth) {
      if (value(field, nth[1]!) === undefined) return `"${item}": "${nth[1]}" is not a day of the week (${range(field)})`;
      return /^[1-5]$/.test(nth[2]!) ? undefined : `"${item}": the week of the month after # must be 1-5`;
    }
    const last = item.match(/^(\w+)L$/i);
    if (item.toUpperCase() === 'L') return undefined;
    if (last && value(field, last[1]!) !== undefined) return undefined;
  }
  const [base, step, ...extra] = item.split('/');
  if (extra.length || base === undefined || base === '') return `"${item}" is not a valid ${field.name} value`;
  if (step !== undefined && !(/^\d+$/.test(step) && Number(step) >= 1 && Number(step) <= field.max)) {
    return `"${item}": the step after / must be a whole number from 1 to ${field.max}`;
  }
  if (base === '*') return undefined;
  const bounds = base.split('-');
  if (bounds.length > 2) return `"${item}" is not a valid ${field.name} value`;
  for (const b of bounds) {
    if (value(field, b) === undefined) return `"${b}" is not a valid ${field.name} value (${range(field)})`;
  }
  return undefined;
}

function checkCron(body: string): string | undefined {
  const parts = body.trim().split(/\s+/);
  if (parts.length !== 6) {
    return `cron(${body}) has ${parts.length} fields; EventBridge Scheduler needs 6: minutes hours day-of-month month day-of-week year, e.g. cron(0 6 * * ? *)`;
  }
  const [, , dom, , dow] = parts as [string, string, string, string, string, string];
  // Scheduler refuses both days given (or both '*'): exactly one of them must be '?'.
  if ((dom === '?') === (dow === '?')) {
    return `cron(${body}): exactly one of day-of-month ("${dom}") and day-of-week ("${dow}") must be "?", e.g. cron(0 6 * * ? *)`;
  }
  for (let i = 0; i < FIELDS.length; i++) {
    const field = FIELDS[i]!;
    const text = parts[i]!;
    if (text === '?') {
      if (field.name !== 'day-of-month' && field.name !== 'day-of-week') return `cron(${body}): "?" is allowed only in day-of-month or day-of-week, not in ${field.name}`;
      continue;
    }
    for (const item of text.split(',')) {
      const problem = checkItem(field, item);
      if (problem) return `cron(${body}): ${field.name} ${problem}`;
    }
  }
  return undefined;
}

function checkRate(body: string): string | undefined {
  const m = body.trim().match(/^(\d+)\s+([a-z]+)$/);
  if (!m) return `rate(${body}) must be rate(<whole number> <unit>), e.g. rate(6 hours)`;
  const n = Number(m[1]);
  const unit = m[2]!;
  if (n < 1) return `rate(${body}): the value must be at least 1`;
  const singular = unit.replace(/s$/, '');
  if (!['minute', 'hour', 'day'].includes(singular)) return `rate(${body}): the unit must be minute(s), hour(s) or day(s), not "${unit}"`;
  const want = n === 1 ? singular : `${singular}s`;
  if (unit !== want) return `rate(${body}): write "${n} ${want}" (Scheduler takes the singular unit only for 1)`;
  return undefined;
}

function checkAt(body: string): string | undefined {
  const m = body.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/);
  const bad = `at(${body}) must be at(yyyy-mm-ddThh:mm:ss) with a real date and time, e.g. at(2030-01-31T06:00:00)`;
  if (!m) return bad;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  const same = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && date.getUTCHours() === h && date.getUTCMinutes() === mi && date.getUTCSeconds() === s;
  return same ? undefined : bad;
}

/** Why `expression` is not a valid Scheduler expression, or undefined when it is. */
export function validateScheduleExpression(expression: string): string | undefined {
  const m = expression.match(/^(cron|rate|at)\((.*)\)$/s);
  if (!m) return `"${expression}" must be cron(...), rate(...) or at(...), e.g. cron(0 6 * * ? *)`;
  const body = m[2]!;
  if (m[1] === 'cron') return checkCron(body);
  if (m[1] === 'rate') return checkRate(body);
  return checkAt(body);
}

let zones: Set<string> | undefined;

/**
 * Why `zone` is not an IANA time zone Scheduler takes, or undefined when it is. Canonical names
 * come from the runtime's IANA list; an alias (`US/Pacific`) is accepted when the runtime resolves
 * it, but offsets and abbreviations (`+02:00`, `PST`) are not IANA names and are refused.
 */
export function validateTimeZone(zone: string): string | undefined {
  zones ??= new Set([...Intl.supportedValuesOf('timeZone'), 'UTC']);
  if (zones.has(zone)) return undefined;
  if (/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)+$/.test(zone)) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return undefined;
    } catch {
      // Unknown to the runtime: fall through to the error.
    }
  }
  return `"${zone}" is not an IANA time zone name; use one such as UTC, Europe/Paris or America/Los_Angeles`;
}
