/**
 * THE merge and THE key-scan reconciliation, written once over engine primitives (the pattern of
 * powertools' BasePersistenceLayer: the algorithm owns every decision, a backend supplies reads
 * and writes). DuckDB and Athena each implement EnginePrimitives; neither decides what is
 * inserted, replaced, counted, deleted or refused.
 *
 * mergeBatch: for each group of raw objects the engine stages at once
 *   stage (typed, one row per key, with its profile) → merge target → preview (THE merge's own
 *   condition, per object) → record merged keys → upsert in partition groups → end the group
 *   (DuckDB commits its manifest; each Athena MERGE is its own commit).
 * applyKeyScan: load the source keys → counts → the mass-delete guard → record deletions →
 *   delete keys in partition groups → keys curated lacks → keys curated still has in excess.
 *
 * History and change feed (change-history-sql.ts) are written with the records, before the rows
 * they describe: the group's versions and change records before its upsert, the deleted keys'
 * history and records before the delete. A crash in between leaves records the retry matches
 * again (never a change without its record); a rebuild records versions, not changes.
 */
import { ident } from './dialect';
import { changesMergeSql, deleteChangesSql, historyMergeSql, historyNewRowsSql, upsertChangesSql } from './change-history-sql';
import { emptyBatchStats, type BatchStats, type EnginePrimitives, type KeyScan, type KeyScanOptions, type KeyScanReconciliation, type MergeOptions, type MergeResult, type Row } from './engine';
import { deletionRecordsSql, goneKeysSql, keyScanCountsSql, missingKeysSql, sourceKeysSql } from './key-scan-sql';
import { mergePreviewSql } from './merge-sql';

/** Split partition values into groups a single write may touch. */
export function partitionGroups<T>(values: T[], maxPerWrite: number): T[][] {
  if (!Number.isFinite(maxPerWrite)) return values.length ? [values] : [];
  const groups: T[][] = [];
  for (let i = 0; i < values.length; i += maxPerWrite) groups.push(values.slice(i, i + maxPerWrite));
  return groups;
}

function addProfile(total: BatchStats, profile: Row): { rowsRead: number; malformed: number; keyless: number } {
  const rowsRead = Number(profile.rows_read ?? 0);
  const malformed = Number(profile.malformed_rows ?? 0);
  const keyless = Number(profile.rows_without_key ?? 0);
  total.rowsRead += rowsRead;
  total.malformedRows += malformed;
  total.rowsWithoutKey += keyless;
  for (const [k, v] of Object.entries(profile)) {
    if (k.startsWith('cast_failures__') && Number(v) > 0) {
      const col = k.slice('cast_failures__'.length);
      total.castFailures[col] = (total.castFailures[col] ?? 0) + Number(v);
    }
  }
  return { rowsRead, malformed, keyless };
}

/** Recompute the history of some keys (THE history statement), with new versions when given. */
async function recordHistory(engine: EnginePrimitives, keys: string, versions: string | undefined, rebuild: boolean): Promise<void> {
  const history = await engine.historyTarget(keys, rebuild);
  const inputs = { target: history.target, keys: history.keys, ...(versions ? { versions } : {}), deletions: await engine.deletionRecords() };
  // No row of these keys yet (a first load, a rebuild): the MERGE would only insert, so insert.
  if (history.empty) await engine.insertHistory(history, historyNewRowsSql(engine.dataset, engine.dialect, inputs), rebuild);
  else await engine.rows(historyMergeSql(engine.dataset, engine.dialect, inputs), 'history');
  await engine.commitHistory(rebuild);
}

/** Add change records to this run's feed (THE changes statement). */
async function recordChanges(engine: EnginePrimitives, records: string): Promise<void> {
  await engine.rows(changesMergeSql(await engine.changesTarget(), records), 'change records');
  await engine.commitChanges();
}

/** Stage and merge raw objects into curated (see the module comment). */
export async function mergeBatch(engine: EnginePrimitives, rawKeys: string[], options: MergeOptions = {}): Promise<MergeResult> {
  const rebuild = options.rebuild === true;
  const total: MergeResult = { ...emptyBatchStats(), contributions: {} };
  if (rebuild) await engine.beginRebuild();
  for await (const group of engine.stageGroups(rawKeys)) {
    const { rowsRead, malformed, keyless } = addProfile(total, group.profile);
    const target = await engine.mergeTarget(group, rebuild);
    const preview = { staged: 0, inserted: 0, updated: 0, unchanged: 0 };
    const years = new Set<number>();
    for (const p of await engine.rows(mergePreviewSql(engine.dataset, engine.dialect, group.staged, target), 'merge preview')) {
      const o = { staged: Number(p.staged ?? 0), inserted: Number(p.inserted ?? 0), updated: Number(p.updated ?? 0), unchanged: Number(p.unchanged ?? 0) };
      preview.staged += o.staged;
      preview.inserted += o.inserted;
      preview.updated += o.updated;
      preview.unchanged += o.unchanged;
      for (const y of String(p.years ?? '').split(',').filter(Boolean)) years.add(Number(y));
      total.contributions[engine.rawKeyOf(String(p.source_object ?? ''))] = { keys: o.staged, inserted: o.inserted };
    }
    total.duplicatesRemoved += rowsRead - malformed - keyless - preview.staged;
    total.rowsInserted += preview.inserted;
    total.rowsUpdated += preview.updated;
    total.rowsUnchanged += preview.unchanged;
    const changed = preview.inserted + preview.updated > 0;
    // Change records and versions before the rows are written (see the module comment).
    if (changed && !rebuild && options.runId) {
      await recordChanges(engine, upsertChangesSql(engine.dataset, engine.dialect, group.staged, target, options.runId, options.changedAt ?? new Date()));
    }
    const pk = ident(engine.dataset.primaryKey);
    if (preview.staged > 0 || rebuild) await recordHistory(engine, `SELECT DISTINCT v.${pk} FROM (${group.versions}) AS v WHERE v.${pk} IS NOT NULL`, group.versions, rebuild);
    // Recorded before the rows are written: a crash in between leaves a key recorded twice at
    // worst (counted once), never a merged key unrecorded.
    if (preview.staged > 0) await engine.recordMergedKeys(group);
    if (changed || rebuild) {
      const sorted = [...years].sort((a, b) => a - b);
      for (const yearGroup of partitionGroups(sorted, engine.partitionsPerWrite)) {
        await engine.upsert(group, target, yearGroup, preview.inserted === preview.staged);
      }
      if (changed) total.partitionsWritten += sorted.length;
    }
    await engine.endGroup(group, changed, rebuild);
  }
  if (rebuild) await engine.finishRebuild();
  return total;
}

/** THE mass-delete guard: more deletions than this share of curated deletes nothing. */
export const deletionRefused = (goneKeys: number, curatedRows: number, maxDeleteShare: number): boolean => goneKeys > maxDeleteShare * curatedRows;

/**
 * Reconcile curated with a completed key scan: delete the curated rows whose keys the source no
 * longer has (recorded in `<table>__deletions`) unless the guard refuses, and list the source
 * keys curated lacks (the repair phase fetches them).
 */
export async function applyKeyScan(engine: EnginePrimitives, keyScan: KeyScan, options: KeyScanOptions & { runId: string }): Promise<KeyScanReconciliation> {
  const d = engine.dataset;
  const dialect = engine.dialect;
  const curated = engine.tableRef('curated');
  try {
    const source = await engine.scratch('source_keys', sourceKeysSql(d, dialect, await engine.keyScanLines(keyScan)));
    const [counts = {}] = await engine.rows(keyScanCountsSql(d, dialect, curated, source), 'key scan counts');
    const curatedRowsBefore = Number(counts.curated_rows ?? 0);
    const goneKeys = Number(counts.gone ?? 0);
    const refused = deletionRefused(goneKeys, curatedRowsBefore, options.maxDeleteShare);
    if (goneKeys && !refused) {
      const gone = await engine.scratch('gone', goneKeysSql(d, dialect, curated, source));
      const years = (await engine.rows(`SELECT DISTINCT ${ident('__year')} AS y FROM (${gone}) AS g ORDER BY 1`, 'deletion years')).map((r) => Number(r.y));
      // The record of each removal is written before the rows go: a crash in between re-detects
      // the same keys next run (replacing this run's records), never a deletion without a trace.
      await engine.recordDeletions(deletionRecordsSql(d, dialect, gone, options.detectedAt, options.runId));
      await recordChanges(engine, deleteChangesSql(d, dialect, gone, options.runId, options.detectedAt));
      await recordHistory(engine, `SELECT g.${ident(d.primaryKey)} FROM (${gone}) AS g`, undefined, false);
      await engine.deleteKeys(gone, years);
    }
    const missing = (await engine.rows(missingKeysSql(d, curated, source), 'missing keys')).map((r) => String(r.key));
    const [after = {}] = await engine.rows(`SELECT count(*) AS n FROM (${goneKeysSql(d, dialect, curated, source)}) AS g`, 'extra keys');
    return {
      sourceKeys: Number(counts.source_keys ?? 0),
      curatedRowsBefore,
      goneKeys,
      rowsDeleted: refused ? 0 : goneKeys,
      refused,
      missingKeys: missing,
      extraKeys: Number(after.n ?? 0),
    };
  } finally {
    await engine.dropScratch();
  }
}
