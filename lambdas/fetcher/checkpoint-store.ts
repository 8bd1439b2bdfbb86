/**
 * The incremental checkpoint: the position of the last row whose delivery is complete, one small
 * JSON object per dataset, written with a conditional write so two concurrent runs cannot
 * silently overwrite each other's progress. The position is the source adapter's own (opaque
 * here), stored with its format so no other adapter ever reads it as its own.
 */
import { checkpointKey } from '../../runtime/storage-layout';
import { PreconditionFailedError, type ObjectStore } from '../../runtime/object-store';
import type { SourceIdentity } from './sources/source-adapter';
import { SOCRATA_KEYSET_FORMAT } from './sources/socrata/keyset';
import { StateError } from '../../runtime/pipeline-error';

export interface Checkpoint<P = unknown> {
  dataset: string;
  runId: string;
  writtenAt: string;
  /** Absent in checkpoints written before sources were recorded. */
  source?: SourceIdentity;
  /** The position's format (the adapter's PositionOrder.format). */
  format: string;
  /** The last row delivered, as the source adapter addresses it. */
  position: P;
}

export class CheckpointConflictError extends StateError {
  override name = 'CheckpointConflictError';
}

export class CheckpointStore {
  readonly key: string;

  /** `<store>/<key>`, for messages. */
  get location(): string {
    return `${this.store.location}/${this.key}`;
  }

  constructor(
    private readonly store: ObjectStore,
    private readonly datasetName: string,
  ) {
    this.key = checkpointKey({ name: datasetName });
  }

  /** The stored checkpoint and its etag (pass the etag back to `write`); undefined before the first run. */
  async read(): Promise<{ checkpoint: Checkpoint; etag: string } | undefined> {
    const obj = await readJsonObject(this.store, this.key, `Checkpoint ${this.store.location}/${this.key}`, 'fix or delete it (a full refresh rewrites it)');
    if (!obj) return undefined;
    let value = obj.value;
    const legacy = typeof value.updatedAt === 'string' && typeof value.id === 'string' && value.position === undefined;
    if (legacy) {
      // Written before positions were opaque: every such checkpoint was a Socrata keyset position.
      const { updatedAt, id, ...rest } = value;
      value = { ...rest, format: SOCRATA_KEYSET_FORMAT, position: { updatedAt, id } };
    }
    if (typeof value.format !== 'string' || value.position === undefined || typeof value.runId !== 'string') {
      throw new Error(`Checkpoint ${this.store.location}/${this.key} lacks a runId, position and its format; fix or delete it`);
    }
    return { checkpoint: value as unknown as Checkpoint, etag: obj.etag };
  }

  /**
   * Writes the checkpoint if the stored one still has `expectedEtag` (or, with undefined, if none
   * exists yet). Returns the new etag for the next write.
   */
  async write(checkpoint: Checkpoint, expectedEtag: string | undefined): Promise<string> {
    return writeJsonIfUnchanged(
      this.store,
      this.key,
      checkpoint,
      expectedEtag,
      () =>
        `Checkpoint ${this.store.location}/${this.key} for dataset ${this.datasetName} was changed by another run ` +
        `while run ${checkpoint.runId} was fetching; this run stops without overwriting it. ` +
        'Make sure only one fetch per dataset runs at a time, then re-run.',
    );
  }
}

/**
 * A small JSON object and its etag (undefined when there is none); one that does not parse is an
 * error naming `what` and saying how to fix it. The checkpoint and the range progress are read so.
 */
export async function readJsonObject(store: ObjectStore, key: string, what: string, fix: string): Promise<{ value: Record<string, unknown>; etag: string } | undefined> {
  const obj = await store.get(key);
  if (!obj) return undefined;
  try {
    return { value: JSON.parse(obj.body.toString('utf8')) as Record<string, unknown>, etag: obj.etag };
  } catch (err) {
    throw new Error(`${what} is not valid JSON; ${fix}`, { cause: err });
  }
}

/**
 * Writes `value` as JSON if the stored object still has `expectedEtag` (undefined: if none exists
 * yet) and returns the new etag; a lost race is a CheckpointConflictError with `conflict()`'s message.
 * The checkpoint and a parallel backfill's range progress are both written this way.
 */
export async function writeJsonIfUnchanged(store: ObjectStore, key: string, value: unknown, expectedEtag: string | undefined, conflict: () => string): Promise<string> {
  try {
    const res = await store.put(key, `${JSON.stringify(value, null, 2)}\n`, {
      contentType: 'application/json',
      ...(expectedEtag ? { ifMatch: expectedEtag } : { ifNoneMatch: '*' as const }),
    });
    return res.etag;
  } catch (err) {
    if (err instanceof PreconditionFailedError) throw new CheckpointConflictError(conflict(), { cause: err });
    throw err;
  }
}
