/**
 * The run lease of one dataset: a small JSON object in the raw bucket that at most one ingestion
 * run holds at a time. It replaces the `ListExecutions` guard, which is eventually consistent and
 * therefore no lock. Every transition is a conditional write:
 *
 * - acquire, no lease yet:              PUT If-None-Match: *
 * - acquire, lease released or expired: PUT If-Match: <etag read>
 * - release by its holder:              PUT If-Match: <etag read>, `released: true`
 *
 * A lost race surfaces as a failed precondition and is decided again from a fresh read, so two
 * starts in the same instant cannot both win, and cannot both lose. The lease expires (the state
 * machine timeout plus a margin), so a run killed without reaching its release step (timeout,
 * abort) blocks the next runs for a bounded time only. Nothing is ever deleted: the lease object
 * is overwritten, and its noncurrent versions expire with the bucket's lifecycle rule.
 */
import { PreconditionFailedError, type ObjectStore } from '../../runtime/object-store';
import { StateError } from '../../runtime/pipeline-error';

export interface Lease {
  dataset: string;
  /** The run (Step Functions execution name) that holds or last held the lease. */
  holder: string;
  acquiredAt: string;
  /** After this instant the lease no longer blocks anyone, released or not. */
  expiresAt: string;
  released: boolean;
  releasedAt?: string;
}

export type AcquireResult =
  | { acquired: true; holder: string; expiresAt: string }
  | { acquired: false; holder: string; expiresAt: string };

export type ReleaseResult = { released: boolean; reason: 'released' | 'not-held' | 'already-released' | 'absent' };

export interface RunLeaseDeps {
  store: ObjectStore;
  key: string;
  dataset: string;
  /** How long an acquired lease blocks other runs. */
  leaseSeconds: number;
  clock: () => Date;
}

/** A lease object that cannot be read as one: a person must look at it (the message says where). */
export class LeaseFormatError extends StateError {
  override name = 'LeaseFormatError';
}

/** Conditional writes lost this many times in a row: something else keeps rewriting the lease. */
const MAX_ROUNDS = 5;

function parseLease(body: Buffer, where: string): Lease {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new LeaseFormatError(`${where} is not JSON: fix or remove the object, then start the run again`);
  }
  const l = value as Partial<Lease> | null;
  if (!l || typeof l.holder !== 'string' || typeof l.expiresAt !== 'string' || Number.isNaN(Date.parse(l.expiresAt)) || typeof l.released !== 'boolean') {
    throw new LeaseFormatError(`${where} is not a run lease ({holder, expiresAt, released}): fix or remove the object, then start the run again`);
  }
  return l as Lease;
}

const body = (lease: Lease): string => `${JSON.stringify(lease)}\n`;

export async function acquireLease(runId: string, deps: RunLeaseDeps): Promise<AcquireResult> {
  const where = `${deps.store.location}/${deps.key}`;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = deps.clock();
    const fresh: Lease = {
      dataset: deps.dataset,
      holder: runId,
      acquiredAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + deps.leaseSeconds * 1000).toISOString(),
      released: false,
    };
    // Create first: where no lease exists this is the whole protocol, and it needs no read of a
    // missing key (which S3 answers 403, not 404, without s3:ListBucket).
    try {
      await deps.store.put(deps.key, body(fresh), { ifNoneMatch: '*', contentType: 'application/json' });
      return { acquired: true, holder: runId, expiresAt: fresh.expiresAt };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const current = await deps.store.get(deps.key);
    if (!current) continue; // removed by hand between the two calls: create again
    const lease = parseLease(current.body, where);
    // A retried acquire of the same run (its first answer was lost) keeps the lease it already has.
    if (lease.holder === runId && !lease.released) return { acquired: true, holder: runId, expiresAt: lease.expiresAt };
    const free = lease.released || Date.parse(lease.expiresAt) <= now.getTime();
    if (!free) return { acquired: false, holder: lease.holder, expiresAt: lease.expiresAt };
    try {
      await deps.store.put(deps.key, body(fresh), { ifMatch: current.etag, contentType: 'application/json' });
      return { acquired: true, holder: runId, expiresAt: fresh.expiresAt };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // Another run took it between our read and our write: decide again from a fresh read.
    }
  }
  throw new Error(`Run lease ${where}: ${MAX_ROUNDS} conditional writes in a row lost a race; is something rewriting it? Retry the run`);
}

export async function releaseLease(runId: string, deps: RunLeaseDeps): Promise<ReleaseResult> {
  const where = `${deps.store.location}/${deps.key}`;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await deps.store.get(deps.key);
    if (!current) return { released: false, reason: 'absent' };
    const lease = parseLease(current.body, where);
    // Never release another run's lease: the failure path of a run that never acquired one (bad
    // input, lost the race) calls release too.
    if (lease.holder !== runId) return { released: false, reason: 'not-held' };
    if (lease.released) return { released: false, reason: 'already-released' };
    try {
      await deps.store.put(deps.key, body({ ...lease, released: true, releasedAt: deps.clock().toISOString() }), {
        ifMatch: current.etag,
        contentType: 'application/json',
      });
      return { released: true, reason: 'released' };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
  throw new Error(`Run lease ${where}: ${MAX_ROUNDS} conditional writes in a row lost a race while releasing; retry`);
}
