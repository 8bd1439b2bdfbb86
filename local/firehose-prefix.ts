/**
 * Firehose's S3 prefix expressions, evaluated the way the service does, so the local endpoint
 * writes the same keys as the deployed stream (runtime/storage-layout.ts holds the expressions).
 *
 *   !{timestamp:<java DateTimeFormatter pattern>}  arrival time of the oldest record in the object (UTC)
 *   !{firehose:error-output-type}                  e.g. processing-failed (error prefix only)
 *   !{firehose:random-string}                      11 random alphanumeric characters
 *
 * Every !{timestamp:...} in one prefix evaluates to the same instant, as the docs state.
 */
import { randomInt } from 'node:crypto';

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Pattern letters that are one UTC field, zero-padded to the letter's repeat count. */
const UTC_FIELDS: Partial<Record<string, (t: Date) => number>> = {
  M: (t) => t.getUTCMonth() + 1,
  d: (t) => t.getUTCDate(),
  H: (t) => t.getUTCHours(),
  m: (t) => t.getUTCMinutes(),
  s: (t) => t.getUTCSeconds(),
};

/**
 * Format a UTC time with the subset of java.time.format.DateTimeFormatter patterns that S3 prefixes
 * use: y/u (year), M (month), d (day), H (hour), m (minute), s (second), S (fraction), and quoted
 * literals ('...' with '' for a quote). Any other letter is rejected rather than guessed.
 */
export function formatTimestamp(pattern: string, t: Date): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === "'") {
      // Quoted literal; '' inside or outside quotes is one quote character.
      if (pattern[i + 1] === "'") {
        out += "'";
        i += 2;
        continue;
      }
      const end = pattern.indexOf("'", i + 1);
      if (end < 0) throw new Error(`Unterminated quote in timestamp pattern "${pattern}"`);
      out += pattern.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(ch)) {
      out += ch;
      i += 1;
      continue;
    }
    let run = 1;
    while (pattern[i + run] === ch) run += 1;
    i += run;
    const field = UTC_FIELDS[ch];
    if (ch === 'y' || ch === 'u') out += run === 2 ? pad(t.getUTCFullYear() % 100, 2) : pad(t.getUTCFullYear(), run);
    else if (ch === 'S') out += pad(t.getUTCMilliseconds(), 3).slice(0, run).padEnd(run, '0');
    else if (field) out += pad(field(t), run);
    else throw new Error(`Unsupported letter "${ch}" in timestamp pattern "${pattern}"`);
  }
  return out;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function randomString(length = 11): string {
  let s = '';
  for (let i = 0; i < length; i += 1) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

export interface PrefixContext {
  /** Arrival time of the oldest record in the object. */
  timestamp: Date;
  /** Only meaningful in an error prefix. */
  errorOutputType?: string;
}

/** Evaluate a prefix expression. Unknown namespaces fail loudly: a silent typo would misplace data. */
export function evaluatePrefix(expression: string, ctx: PrefixContext): string {
  return expression.replace(/!\{([A-Za-z]+):([^}]*)\}/g, (whole, namespace: string, value: string) => {
    if (namespace === 'timestamp') return formatTimestamp(value, ctx.timestamp);
    if (namespace === 'firehose') {
      if (value === 'random-string') return randomString();
      if (value === 'error-output-type') {
        if (!ctx.errorOutputType) throw new Error(`${whole} can only be evaluated for error output`);
        return ctx.errorOutputType;
      }
    }
    throw new Error(`Unsupported prefix expression ${whole} in "${expression}"`);
  });
}

/**
 * The object name Firehose appends to the evaluated prefix:
 * `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>` (UTC).
 */
export function firehoseObjectName(stream: string, version: number, t: Date, uuid: string, extension: string): string {
  return `${stream}-${version}-${formatTimestamp('yyyy-MM-dd-HH-mm-ss', t)}-${uuid}${extension}`;
}
