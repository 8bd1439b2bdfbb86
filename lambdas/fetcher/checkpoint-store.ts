/**
 * The incremental checkpoint: the position of the last row whose delivery is complete, one small
 * JSON object per dataset, written with a conditional write so two concurrent runs cannot
 * silently overwrite each other's progress. The position is the source adapter's own (opaque
 * here), stored with its format so no other adapter ever reads it as its own.
 */
import { checkpointKey } from '../../runtime/storage-layout';
import type { ObjectStore } from '../../runtime/object-store';
import { GuardedJsonObject } from './guarded-json';
import type { SourceIdentity } from './sources/source-adapter';
import { SOCRATA_KEYSET_FORMAT } from './sources/socrata/keyset';

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

// A lost race for the checkpoint: callers know it by this module's name.
export { CheckpointConflictError } from './guarded-json';

export class CheckpointStore extends GuardedJsonObject {
  constructor(store: ObjectStore, datasetName: string) {
    super(store, checkpointKey({ name: datasetName }), datasetName, 'Checkpoint');
  }

  /** The stored checkpoint and its etag (pass the etag back to `write`); undefined before the first run. */
  async read(): Promise<{ checkpoint: Checkpoint; etag: string } | undefined> {
    const obj = await this.readJson('fix or delete it (a full refresh rewrites it)');
    if (!obj) return undefined;
    let value = obj.value;
    const legacy = typeof value.updatedAt === 'string' && typeof value.id === 'string' && value.position === undefined;
    if (legacy) {
      // Written before positions were opaque: every such checkpoint was a Socrata keyset position.
      const { updatedAt, id, ...rest } = value;
      value = { ...rest, format: SOCRATA_KEYSET_FORMAT, position: { updatedAt, id } };
    }
    if (typeof value.format !== 'string' || value.position === undefined || typeof value.runId !== 'string') {
      throw new Error(`Checkpoint ${this.location} lacks a runId, position and its format; fix or delete it`);
    }
    return { checkpoint: value as unknown as Checkpoint, etag: obj.etag };
  }

  /**
   * Writes the checkpoint if the stored one still has `expectedEtag` (or, with undefined, if none
   * exists yet). Returns the new etag for the next write.
   */
  write(checkpoint: Checkpoint, expectedEtag: string | undefined): Promise<string> {
    return this.writeJson(checkpoint, expectedEtag, checkpoint.runId);
  }
}
