/**
 * A parallel backfill's plan and how far each of its ranges got, beside the checkpoint
 * (`checkpoints/<dataset>.ranges.json`). The checkpoint itself moves only when every range is
 * complete; until then this object is what lets a retried invocation, or the next run after a
 * failed one, go on from each range's last delivered page instead of starting the backfill again.
 * Written with conditional writes, like the checkpoint, so two runs cannot both own it.
 */
import type { ObjectStore } from '../../runtime/object-store';
import { rangeProgressKey } from '../../runtime/storage-layout';
import { GuardedJsonObject } from './guarded-json';
import type { PositionOrder, SourceIdentity } from './sources/source-adapter';

/** A range (after, until] of the source's order (positions are the source adapter's own). */
export interface RangeState<P = unknown> {
  /** The range starts after this row; null: from the beginning of the data. */
  after: P | null;
  /** The range's last row (inclusive); null: to the end of the data. */
  until: P | null;
  /** The range's last row delivered in a whole page; null: none yet. */
  position: P | null;
  done: boolean;
}

export interface RangeProgress<P = unknown> {
  version: 1;
  dataset: string;
  /** The run that last wrote it (the plan may have been made by an earlier one: plannedBy). */
  runId: string;
  plannedBy: string;
  mode: 'incremental' | 'full-refresh';
  source?: SourceIdentity;
  /** The checkpoint's etag when the plan was made: a plan is resumed only over the same checkpoint. */
  checkpointEtag: string | null;
  /** Rows counted after the start when the plan was made. */
  rows: number;
  plannedAt: string;
  writtenAt: string;
  ranges: RangeState<P>[];
  /** Every range complete and the checkpoint moved past them. */
  done: boolean;
}

export function isRangeState<P>(r: unknown, positions: PositionOrder<P>): r is RangeState<P> {
  const x = r as Partial<RangeState<unknown>> | null;
  const ok = (p: unknown): boolean => p === null || positions.is(p);
  return !!x && ok(x.after) && ok(x.until) && ok(x.position) && typeof x.done === 'boolean';
}

export class RangeProgressStore<P> extends GuardedJsonObject {
  constructor(
    store: ObjectStore,
    datasetName: string,
    private readonly positions: PositionOrder<P>,
  ) {
    super(store, rangeProgressKey({ name: datasetName }), datasetName, 'Range progress');
  }

  async read(): Promise<{ progress: RangeProgress<P>; etag: string } | undefined> {
    const obj = await this.readJson('delete it (the next run plans the backfill again)');
    if (!obj) return undefined;
    const value = obj.value as Partial<RangeProgress<P>>;
    if (value.version !== 1 || !Array.isArray(value.ranges) || !value.ranges.every((r) => isRangeState(r, this.positions)) || typeof value.done !== 'boolean') {
      throw new Error(`Range progress ${this.location} is not one this fetcher wrote; delete it (the next run plans the backfill again)`);
    }
    return { progress: value as RangeProgress<P>, etag: obj.etag };
  }

  /** Writes if the stored object still has `expectedEtag` (undefined: if none exists); returns the new etag. */
  write(progress: RangeProgress<P>, expectedEtag: string | undefined): Promise<string> {
    return this.writeJson(progress, expectedEtag, progress.runId);
  }
}
