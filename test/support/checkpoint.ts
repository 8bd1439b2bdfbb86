/** Reading a Socrata dataset's stored checkpoint in tests: its keyset position, format checked. */
import assert from 'node:assert/strict';
import type { Checkpoint } from '../../lambdas/fetcher/checkpoint-store';
import { SOCRATA_KEYSET_FORMAT, type KeysetPosition } from '../../lambdas/fetcher/sources/socrata/keyset';
import { KEYSET_POSITIONS } from '../../lambdas/fetcher/sources/socrata/socrata-source';

/** The checkpoint (as CheckpointStore.read returns it) with its position's fields alongside; fails when there is none. */
export function keysetCheckpoint(read: { checkpoint: Checkpoint } | undefined): Checkpoint<KeysetPosition> & KeysetPosition {
  assert.ok(read, 'a checkpoint was written');
  const { checkpoint } = read;
  assert.equal(checkpoint.format, SOCRATA_KEYSET_FORMAT);
  assert.ok(KEYSET_POSITIONS.is(checkpoint.position), `a keyset position: ${JSON.stringify(checkpoint.position)}`);
  return { ...checkpoint, position: checkpoint.position, updatedAt: checkpoint.position.updatedAt, id: checkpoint.position.id };
}
