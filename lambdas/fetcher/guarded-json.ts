/**
 * A small JSON state object of a dataset that only one run may own at a time: read with its etag,
 * written only if nobody changed it since (a conditional write), so two concurrent runs cannot
 * silently overwrite each other's progress. The checkpoint and a parallel backfill's range
 * progress are both kept so.
 */
import { PreconditionFailedError, type ObjectStore } from '../../runtime/object-store';
import { StateError } from '../../runtime/pipeline-error';

export class CheckpointConflictError extends StateError {
  override name = 'CheckpointConflictError';
}

export abstract class GuardedJsonObject {
  /** `<store>/<key>`, for messages. */
  get location(): string {
    return `${this.store.location}/${this.key}`;
  }

  constructor(
    protected readonly store: ObjectStore,
    readonly key: string,
    protected readonly datasetName: string,
    /** What the object is, capitalised, for messages ("Checkpoint"). */
    private readonly what: string,
  ) {}

  /** The object and its etag (undefined when there is none); one that does not parse is an error saying how to `fix` it. */
  protected async readJson(fix: string): Promise<{ value: Record<string, unknown>; etag: string } | undefined> {
    const obj = await this.store.get(this.key);
    if (!obj) return undefined;
    try {
      return { value: JSON.parse(obj.body.toString('utf8')) as Record<string, unknown>, etag: obj.etag };
    } catch (err) {
      throw new Error(`${this.what} ${this.location} is not valid JSON; ${fix}`, { cause: err });
    }
  }

  /**
   * Writes `value` if the stored object still has `expectedEtag` (undefined: if none exists yet)
   * and returns the new etag for the next write; a lost race is a CheckpointConflictError.
   */
  protected async writeJson(value: unknown, expectedEtag: string | undefined, runId: string): Promise<string> {
    try {
      const res = await this.store.put(this.key, `${JSON.stringify(value, null, 2)}\n`, {
        contentType: 'application/json',
        ...(expectedEtag ? { ifMatch: expectedEtag } : { ifNoneMatch: '*' as const }),
      });
      return res.etag;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      throw new CheckpointConflictError(
        `${this.what} ${this.location} for dataset ${this.datasetName} was changed by another run while run ${runId} ` +
          'was fetching; this run stops without overwriting it. Make sure only one fetch per dataset runs at a time, then re-run.',
        { cause: err },
      );
    }
  }
}
