/**
 * One base for every error the product throws. A command (the local CLIs, the transform
 * container, the CDK app, the bench) decides how to end from the error's category and exit code,
 * in one function of its own, instead of a list of classes or of `error.name` strings that a new
 * error class silently falls outside of. test/house/error-classes.test.ts fails on an error class
 * that does not extend this base.
 */
import { TRANSFORM_EXIT, type TransformExitCode } from './run-protocol';

/**
 * What went wrong, as far as a command must tell: the exit code each category ends a command
 * with. The codes are the run protocol's (`TRANSFORM_EXIT`), so the container and the local CLI
 * end the same way for the same error.
 */
export const ERROR_EXIT_CODES = {
  /** A bad command line, or a command that cannot run on what it was given: change the command. */
  usage: TRANSFORM_EXIT.config,
  /** Configuration: environment variables, dataset and environment definitions, model files. */
  config: TRANSFORM_EXIT.config,
  /** A safety limit refused a destructive change (a mass delete); nothing was changed. */
  refused: TRANSFORM_EXIT.massDeleteRefused,
  /** The source answered wrongly, not at all, or not in time. */
  source: TRANSFORM_EXIT.failed,
  /** Firehose did not take the records. */
  delivery: TRANSFORM_EXIT.failed,
  /**
   * State the run keeps between invocations (cursor, checkpoint, lease, curated manifest, key scan
   * files, fetch statistics, the data directory's lock) is inconsistent or was changed by someone else.
   */
  state: TRANSFORM_EXIT.failed,
  /** The data read cannot be used: a malformed file, too many rows quarantined. */
  data: TRANSFORM_EXIT.failed,
  /** The query engine (Athena, DuckDB, Trino) failed or cannot be used. */
  engine: TRANSFORM_EXIT.failed,
  /** A local stand-in service (Socrata, Firehose, Athena) refuses a request: it answers 4xx/5xx and goes on. */
  request: TRANSFORM_EXIT.failed,
} as const satisfies Record<string, TransformExitCode>;
export type ErrorCategory = keyof typeof ERROR_EXIT_CODES;

/**
 * `category` and `exitCode` are getters on the prototype, not fields, so that an error prints and
 * logs (util.inspect, the Lambda runtime, Powertools) exactly as it did before it had them.
 */
export abstract class PipelineError extends Error {
  abstract get category(): ErrorCategory;

  /**
   * What to do about it, when the place that knows is not the one that wrote the message (the
   * local CLI adds one to a refused mass delete); a command that prints hints prints it.
   */
  declare hint?: string;

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    // The class's own name. Minification renames classes, so the classes bundled into a Lambda
    // function (lambdas/) also set theirs as a literal (`override name = '...'`).
    this.name = new.target.name;
  }

  get exitCode(): TransformExitCode {
    return ERROR_EXIT_CODES[this.category];
  }
}

export class UsageError extends PipelineError { override get category() { return 'usage' as const; } }
export class ConfigError extends PipelineError { override get category() { return 'config' as const; } }
export class RefusedError extends PipelineError { override get category() { return 'refused' as const; } }
export class SourceError extends PipelineError { override get category() { return 'source' as const; } }
export class DeliveryError extends PipelineError { override get category() { return 'delivery' as const; } }
export class StateError extends PipelineError { override get category() { return 'state' as const; } }
export class DataError extends PipelineError { override get category() { return 'data' as const; } }
export class EngineError extends PipelineError { override get category() { return 'engine' as const; } }
export class RequestRefusedError extends PipelineError { override get category() { return 'request' as const; } }

/** The category of `err`, or undefined for an error that is not ours (a library's, a bug's). */
export function errorCategory(err: unknown): ErrorCategory | undefined {
  return err instanceof PipelineError ? err.category : undefined;
}

/** The exit code a command ends with for `err`: an error that is not ours is a failed run. */
export function exitCodeFor(err: unknown): TransformExitCode {
  return err instanceof PipelineError ? err.exitCode : TRANSFORM_EXIT.failed;
}

/**
 * An error as it crosses a process boundary (the local transform process answers its parent over
 * IPC, which carries plain objects): what the parent needs to map it as if it had been thrown there.
 */
export interface ErrorReport {
  name: string;
  message: string;
  category?: ErrorCategory;
  hint?: string;
}

export function errorReport(err: unknown): ErrorReport {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    name: e.name,
    message: e.message,
    ...(e instanceof PipelineError ? { category: e.category, ...(e.hint ? { hint: e.hint } : {}) } : {}),
  };
}

/** The error `errorReport` described: a PipelineError of the same name and category, or a plain Error. */
export function errorFromReport(report: ErrorReport): Error {
  if (!report.category) return Object.assign(new Error(report.message), { name: report.name });
  const err = new ReportedError(report.message, report.category);
  err.name = report.name;
  if (report.hint) err.hint = report.hint;
  return err;
}

class ReportedError extends PipelineError {
  readonly #category: ErrorCategory;

  constructor(message: string, category: ErrorCategory) {
    super(message);
    this.#category = category;
  }

  override get category(): ErrorCategory {
    return this.#category;
  }
}
