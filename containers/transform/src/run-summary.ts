/**
 * The run summary: what one transform run did, as written to `_runs/<dataset>/<run-id>.json`
 * and read back by the report, the history page and the local CLI. Its own module so the
 * renderers depend on the summary's shape, not on the transform that produces it.
 */
import type { FetchFigures } from '../../../runtime/fetch-run-stats';
import type { ColumnProfiles } from './column-profile';
import type { DataTestResult } from './data-tests';
import type { BatchStats, UnreadableObject } from './engine';
import type { Freshness } from './freshness';
import type { SkippedModel } from './model-runner';

/** A run's summary: the merged batch's stats (see BatchStats) plus the run's own facts. */
export interface RunSummary extends BatchStats {
  dataset: string;
  runId: string;
  engine: 'duckdb' | 'athena';
  /**
   * succeeded: every error-severity test passed (warnings may have failed). failed: the run stopped
   * on an error (`error`); only local/failed-run.ts writes such a summary.
   */
  status: 'succeeded' | 'tests_failed' | 'failed';
  /** Why a failed run failed (one line); its figures are what was known when it failed. */
  error?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** new: merged in this run; quarantined: cannot be read whole, left unprocessed (see quarantinedObjects). */
  rawObjects: { total: number; new: number; alreadyProcessed: number; quarantined: number };
  /** Raw objects that cannot be read whole (truncated/corrupt gzip): not merged, retried every run. */
  quarantinedObjects: UnreadableObject[];
  /** This run rebuilt curated from the whole raw zone. */
  rebuild: boolean;
  /**
   * Distinct keys the merges recorded vs rows in curated; with a key scan for this run, also
   * curated against the source's keys (`source`), which is then the reconciliation test.
   */
  reconciliation: { mergedKeys: number; curatedRows: number; source?: SourceReconciliation };
  /** Curated rows removed because the source no longer has their keys (0 without a key scan). */
  rowsDeleted: number;
  /** Source keys curated lacks (0 without a key scan); listed in `missingKeysLocation` for repair. */
  missingKeys: number;
  /**
   * The key scan of this run was read (deletions detected, reconciliation against the source).
   * The name is the stored one: run summaries and history files already written carry it.
   */
  keysetApplied: boolean;
  /** Keys are missing and nothing else failed: the repair phase should fetch them, then the transform run again. */
  repairNeeded: boolean;
  /** Maintenance statements run this run (Athena: OPTIMIZE, VACUUM), if any. */
  maintenance: string[];
  /**
   * Source columns the dataset does not declare, as the fetcher saw them this run: kept in raw,
   * not loaded into curated until declared.
   */
  schemaDrift: { undeclared: string[] };
  /** rowsInserted + rowsUpdated. */
  rowsWritten: number;
  curatedRows: number;
  /** Marts built this run. */
  marts: { name: string; table: string; rows: number }[];
  /**
   * Selected marts not built because an upstream error-severity test failed (their tests are
   * skipped too). Always written now; optional because summaries of earlier runs lack it.
   */
  skippedModels?: SkippedModel[];
  /** What this run was asked to do: `--select` terms (absent: every mart) and `--tests-only` (optional: see skippedModels). */
  selection?: { select?: string[]; testsOnly: boolean };
  /** failed: error tests that failed; warned: tests whose warn threshold was met; skipped: not run (optional: see skippedModels). */
  tests: { passed: number; failed: number; warned: number; skipped?: number; results: DataTestResult[] };
  /** Names of the error-severity tests that failed (why the run exits non-zero). */
  failedErrorTests: string[];
  summaryLocation: string;
  reportLocation: string;
  /** The history page across runs (rebuilt by every run); absent in summaries written before it existed. */
  historyLocation?: string;
  /** The fetcher's figures for this run (runs/<dataset>/<run-id>/ in raw); absent when it left none. */
  fetch?: FetchFigures;
  /** Newest change and event in curated after this run, and the lag behind now and the source. */
  freshness?: Freshness;
  /** What changed this run, from its records in `<table>__changes` (absent for --tests-only and in older summaries). */
  changes?: ChangeSummary;
  /**
   * Wall-clock milliseconds of the transform's stages that ran (absent in older summaries). The
   * history and change-feed statements the merge and the key scan run count under `history`, not
   * under theirs; what is not in a stage (reading state, maintenance, reconciliation) is the rest
   * of durationMs.
   */
  stageMs?: Partial<Record<TransformStage, number>>;
  /** Curated's declared columns profiled, for a dataset without marts. */
  columnProfile?: ColumnProfiles;
}

/** The transform's stages, in the order they run. */
export const TRANSFORM_STAGES = ['merge', 'key scan', 'history', 'marts', 'tests', 'profile', 'report'] as const;
export type TransformStage = (typeof TRANSFORM_STAGES)[number];

/** This run's change records, summed up (a retried run id includes its earlier attempts' records). */
export interface ChangeSummary {
  inserted: number;
  updated: number;
  deleted: number;
  /** Declared columns the updates changed, most changed first (at most ten). */
  columns: { column: string; updates: number }[];
  /** The first few keys of each change, in key order. */
  examples: { insert: string[]; update: string[]; delete: string[] };
}

/** Curated against the source's key set (see KeyScanReconciliation). */
export interface SourceReconciliation {
  /** The key scan's run; the name is the one stored run summaries already carry. */
  keysetRunId: string;
  sourceKeys: number;
  curatedRowsBefore: number;
  /** Curated keys the source no longer has (deleted unless the mass-delete guard refused). */
  goneKeys: number;
  /** Source keys curated lacks. */
  missingKeys: number;
  /** Curated keys the source does not have, after the deletions. */
  extraKeys: number;
  missingKeysLocation?: string;
  /**
   * Source keys curated lacks because the fetcher quarantined their rows in this run (not in
   * `missingKeys`, never repaired again: no re-fetch or rebuild can load them).
   */
  quarantinedKeys: number;
  /** Where those rows are, when there are any. */
  quarantineLocation?: string;
}
