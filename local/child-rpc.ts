/**
 * The parent's side of a local helper process (the Socrata source, the crawl + transform): fork
 * a TypeScript module under the same tsx loader, keep the tail of what it writes to stderr (for
 * the one-line reason when it dies; all of it with DEBUG set), match calls to their answers by id,
 * and close it by asking, then killing it if it does not go. What a death means (its message, a
 * fault point to repeat) stays with each handle: `exited` tells it, with `closing` false when
 * nobody asked the child to stop.
 */
import { fork, type ChildProcess } from 'node:child_process';

/** The TypeScript loader the parent runs under, found from here so the child's working directory does not matter. */
const TSX = import.meta.resolve('tsx');

/** The messages of a parent→child protocol that carry a call id, without it (what `call` takes). */
export type CallMessage<M> = M extends { id: number } ? Omit<M, 'id'> : never;

/** `M`: the parent's messages to the child (the calls carry `id`; the rest, such as close, do not). */
export interface ChildRpc<M extends object> {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last `tailBytes` the child wrote to stderr. */
  stderrTail(): string;
  /** Send `message` with a fresh `id`; settled by `settle(id, ...)`, rejected at once once `fail` was called. */
  call<T>(message: CallMessage<M>): Promise<T>;
  /** The answer to call `id` (an error rejects it). */
  settle(id: number, error: Error | undefined, value?: unknown): void;
  /** The child is gone: reject every pending call and every later one with `err`. */
  fail(err: Error): void;
  /** True once `close` was called (the exit that follows is not a failure). */
  readonly closing: boolean;
  /** Resolves when the child exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Ask the child to stop with `closeMessage`; SIGKILL if it is still there after 10 s. */
  close(closeMessage: M): Promise<void>;
}

/** `env`: variables the child gets on top of this process's (this process's own are never changed). */
export function forkChild<M extends object>(file: string, tailBytes: number, env: Record<string, string> = {}): ChildRpc<M> {
  const child = fork(file, [], { execArgv: ['--import', TSX], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, ...env } });
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-tailBytes);
    if (process.env.DEBUG) process.stderr.write(d);
  });
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closing = false;
  let failure: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    pid: child.pid!,
    stderrTail: () => tail,
    call: <T>(message: CallMessage<M>): Promise<T> => {
      if (failure) return Promise.reject(failure);
      return new Promise<T>((resolve, reject) => {
        const id = nextId++;
        calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...message, id });
      });
    },
    settle: (id, error, value) => {
      const call = calls.get(id);
      calls.delete(id);
      if (error) call?.reject(error);
      else call?.resolve(value);
    },
    fail: (err) => {
      failure = err;
      for (const c of calls.values()) c.reject(err);
      calls.clear();
    },
    get closing() {
      return closing;
    },
    exited,
    close: async (closeMessage) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      closing = true;
      if (child.connected) child.send(closeMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
