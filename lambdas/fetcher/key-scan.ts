/**
 * The key scan: the source's complete key set, read cheaply (`$select=<primary key>, :id`, ids
 * only, large pages keyset-paged on `:id`) and landed next to the raw zone as gzipped key lists,
 * each key a JSON string on its own line (runtime/key-list.ts: any key text travels exactly):
 *
 *   keysets/<dataset>/<run-id>/part-NNNNN.jsonl.gz one file per page
 *   keysets/<dataset>/<run-id>/_SUCCESS.json       only once the scan reached the end
 *
 * The transform deletes curated rows whose keys are not in a completed scan, and reports (for
 * repair) source keys curated lacks. A scan that did not complete has no _SUCCESS and deletes
 * nothing. Same client, page invariants, deadlines, redaction and time-budget cursor as the row
 * fetch; it never touches the checkpoint.
 */
import { gzipSync } from 'node:zlib';
import { encodeKeyList } from '../../runtime/key-list';
import type { ObjectStore } from '../../runtime/object-store';
import { keysetLatestKey, keysetPartKey, keysetSuccessKey } from '../../runtime/storage-layout';
import { checkedCursor, PhaseInvocation, type PhaseDeps } from './phase-runner';
import type { TimeBudgetExhaustedError } from './time-budget';
import { keyProblem, keyText } from './quarantine';
import { sameSource, type KeySource, type SourceIdentity } from './sources/source-adapter';
import { StateError } from '../../runtime/pipeline-error';

/** Keys per request: ids only, so a page of 50,000 is a few MB. */
export const DEFAULT_KEY_PAGE_SIZE = 50_000;

export interface KeyScanSettings {
  datasetName: string;
  primaryKey: string;
  timeBudgetMarginMs: number;
  /** false: the dataset does not detect deletions; the phase returns at once. */
  detect: boolean;
  /** Hours between scans (0: every run); measured from the last completed scan. */
  scanEveryHours: number;
  keyPageSize?: number;
}

export interface KeyScanStats {
  invocations: number;
  pages: number;
  keys: number;
  /** Source rows without a primary key value (not keys; the row fetch quarantines them). */
  rowsWithoutKey: number;
  /** Source rows whose primary key is an object or array (not keys; the row fetch quarantines them). */
  rowsWithInvalidKey: number;
  sourceRetries: number;
  timeBudgetDeferrals: number;
}

export interface KeyScanCursor {
  version: 1;
  phase: 'keys';
  /** The next page starts after this key-scan position (the source's own, e.g. Socrata's `:id`); null: from the beginning. */
  afterId: string | null;
  parts: number;
  startedAt: string;
  stats: KeyScanStats;
  stalledInvocations?: number;
}

/** What `_SUCCESS.json` holds (also copied to `keysets/<dataset>/_latest.json`). */
export interface KeysetSuccess {
  dataset: string;
  runId: string;
  source: SourceIdentity;
  keys: number;
  parts: number;
  startedAt: string;
  completedAt: string;
}

export interface KeyScanOutput {
  runId: string;
  phase: 'keys';
  done: boolean;
  cursor: KeyScanCursor | null;
  /** The scan was not run: the dataset does not detect deletions, or the last scan is recent. */
  skipped?: 'disabled' | 'not due';
  stats: KeyScanStats;
}

export interface KeyScanDeps extends PhaseDeps {
  source: KeySource;
  /** The raw bucket (or its local mirror): key lists go next to the raw zone. */
  store: ObjectStore;
}

const emptyKeyStats = (): KeyScanStats => ({ invocations: 0, pages: 0, keys: 0, rowsWithoutKey: 0, rowsWithInvalidKey: 0, sourceRetries: 0, timeBudgetDeferrals: 0 });

export class KeyScanError extends StateError {
  override name = 'KeyScanError';
}

function validateKeyCursor(c: unknown): KeyScanCursor {
  return checkedCursor<KeyScanCursor>(c, 'Key scan', (x) => x.phase === 'keys' && typeof x.parts === 'number' && (x.afterId === null || typeof x.afterId === 'string'), KeyScanError);
}

/** The last completed scan of a dataset, if any (its `_latest.json`). */
export async function latestKeyset(store: ObjectStore, datasetName: string): Promise<KeysetSuccess | undefined> {
  const obj = await store.get(keysetLatestKey({ name: datasetName }));
  if (!obj) return undefined;
  try {
    const v = JSON.parse(obj.body.toString('utf8')) as Partial<KeysetSuccess>;
    return typeof v.completedAt === 'string' ? (v as KeysetSuccess) : undefined;
  } catch {
    // An unreadable pointer only makes the next scan due: it never deletes anything by itself.
    return undefined;
  }
}

export async function runKeyScan(input: { runId: string; cursor?: KeyScanCursor | null }, settings: KeyScanSettings, deps: KeyScanDeps): Promise<KeyScanOutput> {
  const { logger } = deps;
  const named = { name: settings.datasetName };
  if (!settings.detect) return { runId: input.runId, phase: 'keys', done: true, cursor: null, skipped: 'disabled', stats: emptyKeyStats() };

  let cursor: KeyScanCursor;
  if (input.cursor) {
    cursor = validateKeyCursor(input.cursor);
  } else {
    // A retried first invocation of a scan that already completed: nothing to do again.
    const existing = await deps.store.get(keysetSuccessKey(named, input.runId));
    if (existing) {
      const s = JSON.parse(existing.body.toString('utf8')) as KeysetSuccess;
      return { runId: input.runId, phase: 'keys', done: true, cursor: null, stats: { ...emptyKeyStats(), keys: s.keys, pages: s.parts } };
    }
    if (settings.scanEveryHours > 0) {
      const last = await latestKeyset(deps.store, settings.datasetName);
      const same = !!last?.source && sameSource(last.source, deps.source.identity);
      const ageMs = last ? deps.clock().getTime() - Date.parse(last.completedAt) : Infinity;
      if (same && last && ageMs >= 0 && ageMs < settings.scanEveryHours * 3_600_000) {
        logger?.info('key scan not due', { lastScan: last.runId, completedAt: last.completedAt, scanEveryHours: settings.scanEveryHours });
        return { runId: input.runId, phase: 'keys', done: true, cursor: null, skipped: 'not due', stats: emptyKeyStats() };
      }
    }
    cursor = { version: 1, phase: 'keys', afterId: null, parts: 0, startedAt: deps.clock().toISOString(), stats: emptyKeyStats() };
    logger?.info('key scan started', {});
  }
  const stats: KeyScanStats = { ...emptyKeyStats(), ...cursor.stats };
  stats.invocations++;
  const pagesBefore = stats.pages;
  const invocation = new PhaseInvocation(deps, settings.timeBudgetMarginMs);
  const limit = settings.keyPageSize ?? DEFAULT_KEY_PAGE_SIZE;
  let afterId = cursor.afterId;
  let parts = cursor.parts;

  let done = false;
  const deferred = await invocation.pages(async () => {
    const { rows, next } = await deps.source.readKeys({ after: afterId, limit, budgetMs: invocation.budgetMs });
    if (!rows.length) {
      done = true;
      return true;
    }
    const keys: string[] = [];
    for (const r of rows) {
      // The row fetch's rule (keyProblem): a row it quarantines is no key here either, so it is
      // neither missing from curated nor a reason to stop the scan.
      const problem = keyProblem(r, settings.primaryKey);
      if (problem?.reason === 'missing_primary_key') stats.rowsWithoutKey++;
      else if (problem) stats.rowsWithInvalidKey++;
      else keys.push(keyText(r, settings.primaryKey));
    }
    // The part's number is fixed by the cursor: a retried invocation rewrites the same part.
    await deps.store.put(keysetPartKey(named, input.runId, parts + 1), gzipSync(encodeKeyList(keys)), { contentType: 'application/gzip' });
    parts++;
    stats.pages++;
    stats.keys += keys.length;
    afterId = next;
    return false;
  });
  stats.sourceRetries += invocation.retries();

  if (done) {
    const success: KeysetSuccess = {
      dataset: settings.datasetName,
      runId: input.runId,
      source: deps.source.identity,
      keys: stats.keys,
      parts,
      startedAt: cursor.startedAt,
      completedAt: deps.clock().toISOString(),
    };
    const body = `${JSON.stringify(success, null, 2)}\n`;
    // _SUCCESS last: its presence is what lets the transform delete.
    await deps.store.put(keysetSuccessKey(named, input.runId), body, { contentType: 'application/json' });
    await deps.store.put(keysetLatestKey(named), body, { contentType: 'application/json' });
    logger?.info('key scan finished', { keys: stats.keys, parts });
    return { runId: input.runId, phase: 'keys', done: true, cursor: null, stats };
  }
  const stalledInvocations = invocation.stalls(stats, deferred, stats.pages > pagesBefore, cursor.stalledInvocations, (n, last) => keyScanStalled(settings.datasetName, n, last));

  logger?.info('key scan: time budget reached; returning cursor', { keys: stats.keys, parts });
  return { runId: input.runId, phase: 'keys', done: false, cursor: { ...cursor, afterId, parts, stats, stalledInvocations }, stats };
}

/** The run fails: the source keeps asking to wait longer than an invocation can. */
function keyScanStalled(datasetName: string, stalled: number, last: TimeBudgetExhaustedError): KeyScanError {
  return new KeyScanError(
    `Dataset ${datasetName}: ${stalled} key-scan invocations in a row ran out of time budget without completing a page ` +
      `(last: ${last.message}); the scan is incomplete, so nothing is deleted. Re-run later.`,
    { cause: last },
  );
}
