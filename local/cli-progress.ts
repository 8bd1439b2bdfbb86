/**
 * The progress `npm run local` prints on stderr: the fetch's row counts, then a line per step
 * after it (key scan, crawl, transform), so no stretch of a run is silent. Its own module so tests
 * can drive it with a fake terminal.
 */
import type { FetchProgress, RunStep } from './pipeline';

const fmt = (n: number): string => n.toLocaleString('en-US');

/** What the printer needs of stderr: whether it is a terminal, and a write. */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressPrinter {
  update: (p: FetchProgress) => void;
  /** Ends the progress line so that the next line written to stderr starts on its own. */
  log: (line: string) => void;
  /** A step after the fetch has started: on a terminal a spinner with its seconds, elsewhere a line (and one per interval while it lasts). */
  step: (step: RunStep) => void;
  done: () => void;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Fetch progress on stderr. On a terminal one line rewritten in place, which shows 100% only once
 * the fetcher says it is done (rows served can reach the count before the last page is delivered),
 * and is ended by a newline before any other line. Elsewhere (CI, a pipe) a plain line every
 * few seconds, so a long run is not silent.
 */
export function progressPrinter(out: ProgressStream, intervalMs: number): ProgressPrinter {
  let latest: FetchProgress | undefined;
  let finished = false;
  const describe = (p: FetchProgress): string => {
    const rate = p.elapsedMs ? Math.round((p.rowsFetched / p.elapsedMs) * 1000) : 0;
    const of = p.expectedRows !== undefined ? `/${fmt(p.expectedRows)}` : '';
    return `${fmt(p.rowsFetched)}${of} rows  ${fmt(rate)} rows/s  ${p.pages} pages  ${p.retries} retries  ${p.rowsQuarantined} quarantined`;
  };

  let current: { step: RunStep; since: number } | undefined;
  let stepTimer: NodeJS.Timeout | undefined;
  const seconds = (): string => `${Math.floor((Date.now() - current!.since) / 1000)} s`;
  const stopStep = (): void => {
    if (stepTimer) clearInterval(stepTimer);
    stepTimer = undefined;
    current = undefined;
  };

  if (!out.isTTY) {
    const timer = setInterval(() => {
      if (latest && !finished) out.write(`fetch progress: ${describe(latest)}\n`);
    }, intervalMs);
    timer.unref();
    return {
      update(p) {
        if (finished) return;
        latest = p;
        if (p.done) {
          finished = true;
          clearInterval(timer);
        }
      },
      log: (line) => out.write(`${line}\n`),
      step(step) {
        finished = true;
        clearInterval(timer);
        stopStep();
        current = { step, since: Date.now() };
        out.write(`${step}: started\n`);
        stepTimer = setInterval(() => out.write(`${step}: ${seconds()} so far\n`), intervalMs);
        stepTimer.unref();
      },
      done() {
        finished = true;
        clearInterval(timer);
        stopStep();
      },
    };
  }

  let open = false; // a progress line is on screen without its newline
  const end = (): void => {
    if (open) out.write('\n');
    open = false;
  };
  let frame = 0;
  const spin = (): void => {
    out.write(`\r${SPINNER[frame++ % SPINNER.length]} ${current!.step} ${seconds()} `);
    open = true;
  };
  return {
    update(p) {
      if (finished) return;
      const total = p.expectedRows;
      const frac = p.done ? 1 : total ? Math.min(0.99, p.rowsFetched / total) : 0;
      const width = 24;
      const bar = total !== undefined || p.done ? `[${'#'.repeat(Math.floor(frac * width)).padEnd(width, '.')}] ${Math.floor(frac * 100)}% ` : '';
      out.write(`\r${bar}${describe(p)} `);
      open = true;
      if (p.done) {
        finished = true;
        end();
      }
    },
    log(line) {
      end();
      out.write(`${line}\n`);
    },
    step(step) {
      finished = true;
      stopStep();
      end();
      current = { step, since: Date.now() };
      spin();
      stepTimer = setInterval(spin, 100);
      stepTimer.unref();
    },
    done() {
      finished = true;
      stopStep();
      end();
    },
  };
}
