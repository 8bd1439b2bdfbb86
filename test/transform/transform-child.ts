/**
 * A transform run in its own process, for the crash tests (PIPELINE_CRASH_AT SIGKILLs it).
 * Usage: node --import tsx transform-child.ts <dataset.json> <raw dir> <curated dir> <run id> [rebuild]
 */
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { runTransform } from '../../containers/transform/src/transform';

const [datasetFile, rawDir, curatedDir, runId, mode] = process.argv.slice(2);
if (!datasetFile || !rawDir || !curatedDir || !runId) {
  process.stderr.write('usage: transform-child.ts <dataset.json> <raw dir> <curated dir> <run id> [rebuild]\n');
  process.exit(2);
}
const summary = await runTransform({
  dataset: loadDatasetFile(datasetFile),
  engine: 'duckdb',
  rawStore: openObjectStore(rawDir),
  curatedStore: openObjectStore(curatedDir),
  runId,
  marts: [],
  rebuild: mode === 'rebuild',
});
process.stdout.write(`${JSON.stringify({ status: summary.status, curatedRows: summary.curatedRows })}\n`);
