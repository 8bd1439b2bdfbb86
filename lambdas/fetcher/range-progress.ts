/**
 * A parallel backfill's plan and how far each of its ranges got, beside the checkpoint
 * (`checkpoints/<dataset>.ranges.json`). The checkpoint itself moves only when every range is
 * complete; until then this object is what lets a retried invocation, or the next run after a
 * failed one, go on from each range's last delivered page instead of starting the backfill again.
 * Written with conditional writes, like the checkpoint, so two runs cannot both own it.
 */
import type { ObjectStore } from '../../runtime/object-store';
import { rangeProgressKey } from '../../runtime/storage-layout';
import { writeJsonIfUnchanged, type CheckpointSource, type KeysetPosition } from './checkpoint-store';
import type { KeyRange } from './parallel-plan';

export interface RangeState extends KeyRange {
  /** The range's last row delivered in a whole page; null: none yet. */
  position: KeysetPosition | null;
  done: boolean;
}

export interface RangeProgress {
  version: 1;
  dataset: string;
  /** The run that last wrote it (the plan may have been made by an earlier one: plannedBy). */
  runId: string;
  plannedBy: string;
  mode: 'incremental' | 'full-refresh';
  source?: CheckpointSource;
  /** The checkpoint's etag when the plan was made: a plan is resumed only over the same checkpoint. */
  checkpointEtag: string | null;
  /** Rows counted after the start when the plan was made. */
  rows: number;
  plannedAt: string;
  writtenAt: string;
  ranges: RangeState[];
  /** Every range complete and the checkpoint moved past them. */
  done: boolean;
}

const isPosition = (p: unknown): p is KeysetPosition =>
  typeof p === 'object' && p !== null && typeof (p as KeysetPosition).updatedAt === 'string' && typeof (p as KeysetPosition).id === 'string';
const isPositionOrNull = (p: unknown): boolean => p === null || isPosition(p);

export function isRangeState(r: unknown): r is RangeState {
  const x = r as Partial<RangeState> | null;
  return !!x && isPositionOrNull(x.after) && isPositionOrNull(x.until) && isPositionOrNull(x.position) && typeof x.done === 'boolean';
}

export class RangeProgressStore {
  readonly key: string;

  get location(): string {
    return `${this.store.location}/${this.key}`;
  }

  constructor(
    private readonly store: ObjectStore,
    private readonly datasetName: string,
  ) {
    this.key = rangeProgressKey({ name: datasetName });
  }

  async read(): Promise<{ progress: RangeProgress; etag: string } | undefined> {
    const obj = await this.store.get(this.key);
    if (!obj) return undefined;
    let value: Partial<RangeProgress>;
    try {
      value = JSON.parse(obj.body.toString('utf8')) as Partial<RangeProgress>;
    } catch (err) {
      throw new Error(`Range progress ${this.location} is not valid JSON; delete it (the next run plans the backfill again)`, { cause: err });
    }
    if (value.version !== 1 || !Array.isArray(value.ranges) || !value.ranges.every(isRangeState) || typeof value.done !== 'boolean') {
      throw new Error(`Range progress ${this.location} is not one this fetcher wrote; delete it (the next run plans the backfill again)`);
    }
    return { progress: value as RangeProgress, etag: obj.etag };
  }

  /** Writes if the stored object still has `expectedEtag` (undefined: if none exists); returns the new etag. */
  write(progress: RangeProgress, expectedEtag: string | undefined): Promise<string> {
    return writeJsonIfUnchanged(
      this.store,
      this.key,
      progress,
      expectedEtag,
      () =>
        `Range progress ${this.location} for dataset ${this.datasetName} was changed by another run while run ${progress.runId} ` +
        'was fetching; this run stops without overwriting it. Make sure only one fetch per dataset runs at a time, then re-run.',
    );
  }
}
