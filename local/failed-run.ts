/**
 * A local run that fails still leaves what a successful one leaves: its run summary (status
 * `failed`, the error), its HTML report and a row on the history page, so the failure is found
 * where the runs are looked at, not only in a terminal that has since been closed.
 */
import type { DatasetConfig } from '../runtime/dataset-config';
import { readFetchFigures } from '../runtime/fetch-run-stats';
import type { ObjectStore } from '../runtime/object-store';
import { historyKey, reportKey, runSummaryKey } from '../runtime/storage-layout';
import { emptyBatchStats } from '../containers/transform/src/engine';
import { writeHistory } from '../containers/transform/src/history';
import { renderReport } from '../containers/transform/src/report';
import type { RunSummary } from '../containers/transform/src/run-summary';

export interface FailedRun {
  dataset: DatasetConfig;
  runId: string;
  engine: RunSummary['engine'];
  startedAt: Date;
  error: Error;
  rawStore: ObjectStore;
  curatedStore: ObjectStore;
  now?: () => Date;
  log?: (line: string) => void;
}

/** Where the failed run's summary, report and history page are. */
export interface FailedRunOutputs {
  summaryLocation: string;
  reportLocation: string;
  historyLocation: string;
}

/**
 * The summary of a run that failed: what the fetcher recorded (its figures are in raw whatever
 * happened after), and no transform figures (unknown, not zero: the report leaves them out).
 */
export async function failedRunSummary(run: FailedRun): Promise<RunSummary> {
  const { dataset, runId, curatedStore } = run;
  const finished = (run.now ?? (() => new Date()))();
  // Figures a failure left unreadable are left out rather than failing the failure's own record.
  const fetch = await readFetchFigures(run.rawStore, dataset.name, runId).catch(() => undefined);
  return {
    ...emptyBatchStats(),
    dataset: dataset.name,
    runId,
    engine: run.engine,
    status: 'failed',
    error: run.error.message.split('\n')[0]!,
    startedAt: run.startedAt.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - run.startedAt.getTime(),
    rawObjects: { total: 0, new: 0, alreadyProcessed: 0, quarantined: 0 },
    quarantinedObjects: [],
    rebuild: false,
    reconciliation: { mergedKeys: 0, curatedRows: 0 },
    rowsDeleted: 0,
    missingKeys: 0,
    keysetApplied: false,
    repairNeeded: false,
    maintenance: [],
    schemaDrift: { undeclared: [] },
    rowsWritten: 0,
    curatedRows: 0,
    marts: [],
    skippedModels: [],
    tests: { passed: 0, failed: 0, warned: 0, skipped: 0, results: [] },
    failedErrorTests: [],
    summaryLocation: `${curatedStore.location}/${runSummaryKey(dataset, runId)}`,
    reportLocation: `${curatedStore.location}/${reportKey(dataset, runId)}`,
    historyLocation: `${curatedStore.location}/${historyKey(dataset)}`,
    ...(fetch ? { fetch } : {}),
  };
}

/** Writes the failed run's summary, report and history row, as a successful run writes its own. */
export async function writeFailedRun(run: FailedRun): Promise<FailedRunOutputs> {
  const summary = await failedRunSummary(run);
  const { dataset, runId, curatedStore } = run;
  await curatedStore.put(runSummaryKey(dataset, runId), JSON.stringify(summary, null, 2), { contentType: 'application/json' });
  await curatedStore.put(reportKey(dataset, runId), await renderReport({ dataset, summary, marts: [] }), { contentType: 'text/html; charset=utf-8' });
  await writeHistory(curatedStore, dataset, summary, run.log);
  return { summaryLocation: summary.summaryLocation, reportLocation: summary.reportLocation, historyLocation: summary.historyLocation! };
}
