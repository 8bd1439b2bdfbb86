/**
 * The local Socrata server in a child process of its own, for `npm run local` and the full-size
 * bench: its rows and their generation no longer share the pipeline's heap and event loop, so
 * the pipeline process stays small, and generation runs on the other core while the first pages
 * are fetched. The pipeline talks to it over HTTP as to any source; this handle relays what the
 * server saw (its request log), and runs mutations and fault rules in it.
 *
 * The child dies with its parent (its IPC channel closes when the parent exits, is killed or
 * crashes), and a child that fails says why in one line (`failure`, and the error of `start`).
 */
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { forkChild } from './child-rpc';
import type { FaultRule, MutateOptions, MutateResult, RequestRecord, SocrataServerOptions } from './socrata-server';

/** What both the in-process server and this handle offer the pipeline. */
export interface SocrataEndpoint {
  url: string;
  datasetId: string;
  resourceUrl: string;
  /** Every request received, in order of completion. */
  readonly requests: readonly RequestRecord[];
  close(): Promise<void>;
}

export type SocrataProcessSpec =
  /** Any in-process server options (generated rows: a count, so nothing large crosses the IPC channel). */
  | { kind: 'options'; options: Omit<SocrataServerOptions, 'onRequest' | 'rows'> & { rows?: number } }
  /**
   * A dataset's generated source with its growth history (`history[0]` rows, then grown to each
   * later count), stored compactly under `storageDir`.
   */
  | { kind: 'dataset'; dataset: DatasetConfig; history: number[]; seed: number; port: number; storageDir: string; loadedAt?: string; grownAt?: string[] };

export type ParentMessage =
  | { type: 'start'; spec: SocrataProcessSpec }
  | { type: 'call'; id: number; method: 'mutate' | 'setFaults'; arg: unknown }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'ready'; url: string; datasetId: string }
  | { type: 'request'; record: RequestRecord }
  | { type: 'result'; id: number; value?: unknown; error?: string }
  | { type: 'error'; message: string };

export interface SocrataProcess extends SocrataEndpoint {
  readonly pid: number;
  /** Set once the child exited without being asked to: why, in one line. */
  readonly failure: string | undefined;
  mutate(m: MutateOptions): Promise<MutateResult>;
  setFaults(rules: FaultRule[]): Promise<void>;
}

const CHILD = path.join(import.meta.dirname, 'socrata-child.ts');

export interface StartSocrataProcessOptions {
  /** Give up starting after this long (default 60 s). */
  startTimeoutMs?: number;
  /** Called once if the child exits without being asked to, with the one-line reason. */
  onFailure?: (line: string) => void;
}

export async function startSocrataProcess(spec: SocrataProcessSpec, opts: StartSocrataProcessOptions = {}): Promise<SocrataProcess> {
  const rpc = forkChild<ParentMessage>(CHILD, 4_000);
  const { child, pid } = rpc;
  const requests: RequestRecord[] = [];
  let failure: string | undefined;
  let reported: string | undefined;
  let ready: ((m: { url: string; datasetId: string }) => void) | undefined;
  let startFailed: ((e: Error) => void) | undefined;

  const lastLine = (text: string): string => text.trim().split('\n').filter(Boolean).at(-1) ?? '';
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'request') requests.push(m.record);
    else if (m.type === 'ready') ready?.(m);
    else if (m.type === 'result') rpc.settle(m.id, m.error !== undefined ? new Error(`local Socrata server (PID ${pid}): ${m.error}`) : undefined, m.value);
    else if (m.type === 'error') reported = m.message;
  });
  const exited = rpc.exited.then(({ code, signal }) => {
    if (rpc.closing) return;
    const why = reported ?? (lastLine(rpc.stderrTail()) || (signal ? `killed by ${signal}` : `exit code ${code}`));
    failure = `local Socrata server (PID ${pid}) stopped: ${why}`;
    const err = new Error(failure);
    startFailed?.(err);
    rpc.fail(err);
    opts.onFailure?.(failure);
  });
  child.once('error', (err) => {
    failure = `local Socrata server could not be started: ${err.message}`;
    startFailed?.(new Error(failure));
  });

  const started = await new Promise<{ url: string; datasetId: string }>((resolve, reject) => {
    const timeoutMs = opts.startTimeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const tail = rpc.stderrTail();
      reject(new Error(`local Socrata server (PID ${pid}) did not start within ${timeoutMs / 1000} s${tail ? `: ${lastLine(tail)}` : ''}`));
    }, timeoutMs);
    ready = (m) => {
      clearTimeout(timer);
      resolve(m);
    };
    startFailed = (e) => {
      clearTimeout(timer);
      reject(e);
    };
    child.send({ type: 'start', spec } satisfies ParentMessage);
  });
  startFailed = undefined;

  const call = <T>(method: 'mutate' | 'setFaults', arg: unknown): Promise<T> => rpc.call<T>({ type: 'call', method, arg });

  return {
    pid,
    url: started.url,
    datasetId: started.datasetId,
    resourceUrl: `${started.url}/resource/${started.datasetId}.json`,
    requests,
    get failure() {
      return failure;
    },
    mutate: (m) => call<MutateResult>('mutate', m),
    setFaults: async (rules) => {
      await call<null>('setFaults', rules);
    },
    // It closes its server (and deletes its row file) and exits; a hung child is killed.
    close: async () => {
      await rpc.close({ type: 'close' });
      await exited;
    },
  };
}
