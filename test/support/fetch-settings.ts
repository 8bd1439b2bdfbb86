/**
 * The fetcher phases' settings as tests run them: no lookback, a one-second time-budget margin,
 * and for the key scan detection on with a scan every run. A test names its dataset, its key and
 * what it exercises (page sizes, limits); everything else is this one shape.
 */
import type { FetchSettings } from '../../lambdas/fetcher/fetch-run';
import type { KeyScanSettings } from '../../lambdas/fetcher/key-scan';

type Named = Pick<FetchSettings, 'datasetName' | 'primaryKey'>;

/** The row fetch's (and the repair's) settings: no point columns unless given. */
export const rowFetchSettings = (o: Named & Pick<FetchSettings, 'pageSize'> & Partial<FetchSettings>): FetchSettings => ({
  pointColumns: [],
  lookbackMinutes: 0,
  timeBudgetMarginMs: 1_000,
  ...o,
});

/** The key scan's settings: `keyPageSize` only when the test gives one (the phase has its default). */
export const keyScanSettings = (o: Named & Partial<KeyScanSettings>): KeyScanSettings => ({
  timeBudgetMarginMs: 1_000,
  detect: true,
  scanEveryHours: 0,
  ...o,
});
