/**
 * Usage errors of the local commands as one line a person can act on: node:util's parseArgs
 * messages are long and generic ("To specify a positional argument starting with a '-' ..."),
 * and a typo'd option deserves the option that was meant.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `given` when it is plausibly a typo of it (or a prefix of exactly one). */
export function didYouMean(given: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(given));
  if (given.length >= 2 && prefixed.length === 1) return prefixed[0];
  // A third of the length, at least 1 and at most 3 edits: `--fresch` → `--fresh`, not `--a` → `--json`.
  const budget = Math.min(3, Math.max(1, Math.floor(given.length / 3)));
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(given, k);
    if (d <= budget && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name;
}

/**
 * A parseArgs error as one line: an unknown option names the closest known one; other messages
 * keep their first sentence. `options` are the command's long option names (without dashes).
 */
export function parseArgsErrorLine(err: unknown, options: readonly string[]): string {
  const e = err as Error & { code?: string };
  const unknown = /Unknown option '(-{1,2})([^']+)'/.exec(e.message);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
    const [, dashes, name] = unknown;
    const meant = didYouMean(name!, options);
    return `unknown option ${dashes}${name}${meant ? `; did you mean --${meant}?` : ''}`;
  }
  // "Option '--rows <value>' argument missing": the first sentence, without Node's advice.
  return e.message.split(/\.\s/)[0]!.replace(/\.$/, '');
}

/**
 * An `npm run <command>` line's arguments, or the exit code it ends with: 0 once --help printed
 * `usage`, 2 once a usage error is one line on stderr (pointing to --help).
 */
export function commandArgs<T extends ParseArgsConfig>(command: string, usage: string, config: T): ReturnType<typeof parseArgs<T>> | 0 | 2 {
  let args: ReturnType<typeof parseArgs<T>>;
  try {
    args = parseArgs(config);
  } catch (err) {
    process.stderr.write(`${command}: ${parseArgsErrorLine(err, Object.keys(config.options ?? {}))} (npm run ${command} -- --help)\n`);
    return 2;
  }
  if ((args.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return args;
}
