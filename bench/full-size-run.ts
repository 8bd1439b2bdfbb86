/**
 * The pipeline process of `npm run bench -- --full-size` (forked by ./full-size-bench.ts, never
 * run by hand): one `npm run local -- --fresh` run at the given size, with wall time and peak RSS
 * (VmHWM, reset at each phase boundary) of this process and of its two children (the local
 * Socrata server, the crawl + transform) per phase.
 */
import path from 'node:path';
import { loadDatasetFile } from '../runtime/dataset-config';
import { runLocalPipeline, type PipelinePhase } from '../local/pipeline';
import { cpuSecondsOf, peakRssOf, resetPeakRss } from './process-memory';
import type { FullSizeRunRequest, FullSizeRunResult, PhaseSample } from './full-size-bench';

const REPO = path.join(import.meta.dirname, '..');

/** The bench's phase names: the pipeline's, with the transform split where its merge ends. */
const LABEL: Record<PipelinePhase | 'marts', string> = {
  source: 'source server start',
  fetch: 'fetch + deliver (+ key scan)',
  flush: 'Firehose flush',
  crawl: 'crawl',
  transform: 'transform: merge',
  marts: 'deletions, marts, tests, report',
  sample: 'sample query',
  done: 'done',
};

async function run(req: FullSizeRunRequest): Promise<FullSizeRunResult> {
  const dataset = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
  const phases: PhaseSample[] = [];
  let current: { phase: PipelinePhase | 'marts'; start: number; cpu: { pipeline: number; socrata: number; transform: number } } | undefined;
  const cpuNow = (): { pipeline: number; socrata: number; transform: number } => ({
    pipeline: cpuSecondsOf('self') ?? 0,
    socrata: socrataPid !== undefined ? (cpuSecondsOf(socrataPid) ?? 0) : 0,
    transform: transformPid !== undefined ? (cpuSecondsOf(transformPid) ?? 0) : 0,
  });
  let socrataPid: number | undefined;
  let transformPid: number | undefined;
  let resetsWork = true;
  const reset = (pid: number | 'self'): void => {
    resetsWork = resetPeakRss(pid) && resetsWork;
  };
  const mark = (next: PipelinePhase | 'marts'): void => {
    const now = performance.now();
    if (current) {
      // A child started during this phase has lived only in it: its peak so far is this phase's.
      const s = socrataPid !== undefined ? peakRssOf(socrataPid) : undefined;
      const t = transformPid !== undefined ? peakRssOf(transformPid) : undefined;
      const cpu = cpuNow();
      phases.push({
        phase: LABEL[current.phase],
        seconds: (now - current.start) / 1000,
        peakRss: { pipeline: peakRssOf('self') ?? 0, ...(s !== undefined ? { socrata: s } : {}), ...(t !== undefined ? { transform: t } : {}) },
        cpuSeconds: {
          pipeline: cpu.pipeline - current.cpu.pipeline,
          ...(socrataPid !== undefined ? { socrata: cpu.socrata - current.cpu.socrata } : {}),
          ...(transformPid !== undefined ? { transform: cpu.transform - current.cpu.transform } : {}),
        },
      });
    }
    reset('self');
    if (socrataPid !== undefined) reset(socrataPid);
    if (transformPid !== undefined) reset(transformPid);
    current = { phase: next, start: performance.now(), cpu: cpuNow() };
  };
  const started = performance.now();
  const summary = await runLocalPipeline({
    dataset,
    dataDir: req.dataDir,
    rows: req.rows,
    seed: req.seed,
    fresh: true,
    onPhase: (p, info) => {
      socrataPid ??= info.socrataPid;
      transformPid ??= info.transformPid;
      mark(p);
    },
    log: (line) => {
      // The transform logs its merge's counts as the merge ends: the marts, tests and report follow.
      if (current?.phase === 'transform' && /: read \d+ rows/.test(line)) mark('marts');
    },
  });
  return {
    rows: summary.fetch.rowsFetched,
    curatedRows: summary.transform?.curatedRows ?? 0,
    failedTests: summary.transform?.failedErrorTests ?? [],
    pipelineSeconds: (performance.now() - started) / 1000,
    phases,
    peakResetsWork: resetsWork,
  };
}

// The SDK's notice that Node 20 support ends in 2027 (the deployed code runs Node 22), as npm run local silences it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.once('message', (req: FullSizeRunRequest) => {
  run(req).then(
    (result) => process.send!({ type: 'result', result }, () => process.exit(0)),
    (err: unknown) => process.send!({ type: 'error', message: (err as Error).message.split('\n')[0] }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(1));
