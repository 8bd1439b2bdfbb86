/**
 * The fetcher's figures for one run, handed to the transform (and so to the run report) through
 * the raw bucket: at the end of every invocation the fetcher writes one small object,
 * `runs/<dataset>/<run-id>/fetch-<phase>-<invocation>.json`, holding the phase's figures so far
 * (the cursor carries them cumulatively across invocations). The transform reads the newest
 * object of each phase. A retried invocation carries the same cursor, so it rewrites the same key:
 * nothing is counted twice.
 *
 * Same code path on AWS (S3) and locally (the local object store under the data directory).
 */
import { z } from 'zod';
import type { ObjectStore } from './object-store';
import { fetchStatsKey, fetchStatsPrefix } from './storage-layout';
import { StateError } from './pipeline-error';

export const FETCH_PHASES = ['rows', 'keys', 'repair'] as const;
export type FetchPhase = (typeof FETCH_PHASES)[number];

const position = z.object({ updatedAt: z.string(), id: z.string() });

export const fetchStatsRecordSchema = z.object({
  version: z.literal(1),
  dataset: z.string(),
  runId: z.string(),
  phase: z.enum(FETCH_PHASES),
  /** The phase's invocation number in this run (1-based); the key's sequence. */
  invocation: z.number().int().min(1),
  /**
   * When the phase started in this run (its first invocation; the cursor carries it). Optional:
   * objects written before it was recorded lack it, and the phase's duration is then not known.
   */
  startedAt: z.string().optional(),
  writtenAt: z.string(),
  done: z.boolean(),
  /** Why the phase did no work (key scan "not due", "disabled"; repair "nothing to repair"). */
  skipped: z.string().optional(),
  /** The phase's counters, cumulative over its invocations so far (pages, rows, retries, ...). */
  counts: z.record(z.string(), z.number()),
  /** Row fetch: the keyset position reached; its `updatedAt` is the newest `:updated_at` fetched. */
  checkpoint: position.nullable().optional(),
  /** Row fetch: source columns the dataset does not declare. */
  undeclaredColumns: z.array(z.string()).optional(),
});
export type FetchStatsRecord = z.infer<typeof fetchStatsRecordSchema>;

/** What one phase reports: any object of counters plus the optional facts above. */
export interface PhaseOutcome {
  done: boolean;
  skipped?: string | undefined;
  /** When the phase started in this run (ISO), where the phase's cursor knows it. */
  startedAt?: string | undefined;
  stats: object;
}

/** Numeric fields of a stats object (its counters); other fields are carried separately. */
function countsOf(stats: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** Builds the object an invocation writes. */
export function fetchStatsRecord(dataset: string, runId: string, phase: FetchPhase, outcome: PhaseOutcome, now: Date): FetchStatsRecord {
  const s = outcome.stats as { invocations?: unknown; checkpoint?: unknown; undeclaredColumns?: unknown };
  const checkpoint = position.nullable().safeParse(s.checkpoint);
  const undeclared = z.array(z.string()).safeParse(s.undeclaredColumns);
  return {
    version: 1,
    dataset,
    runId,
    phase,
    // A skipped key scan reports 0 invocations; it still is this run's first.
    invocation: Math.max(1, typeof s.invocations === 'number' ? s.invocations : 1),
    ...(outcome.startedAt ? { startedAt: outcome.startedAt } : {}),
    writtenAt: now.toISOString(),
    done: outcome.done,
    ...(outcome.skipped ? { skipped: outcome.skipped } : {}),
    counts: countsOf(outcome.stats),
    ...(checkpoint.success && 'checkpoint' in s ? { checkpoint: checkpoint.data } : {}),
    ...(undeclared.success ? { undeclaredColumns: undeclared.data } : {}),
  };
}

/** Written at the end of every fetcher invocation (after its work is delivered and checkpointed). */
export async function writeFetchStats(store: ObjectStore, record: FetchStatsRecord): Promise<string> {
  const key = fetchStatsKey({ name: record.dataset }, record.runId, record.phase, record.invocation);
  await store.put(key, JSON.stringify(record), { contentType: 'application/json' });
  return key;
}

/** One phase's figures for the run, as the report shows them. */
export interface PhaseFigures {
  invocations: number;
  done: boolean;
  skipped?: string;
  counts: Record<string, number>;
  checkpoint?: { updatedAt: string; id: string } | null;
  undeclaredColumns?: string[];
  /** When the phase started (absent when its stats objects do not say). */
  startedAt?: string;
  lastWrittenAt: string;
}

/** How long a phase took: from its start to its newest stats object; undefined when its start is not known. */
export function phaseDurationMs(p: Pick<PhaseFigures, 'startedAt' | 'lastWrittenAt'>): number | undefined {
  if (!p.startedAt) return undefined;
  const ms = Date.parse(p.lastWrittenAt) - Date.parse(p.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The fetch block of a run summary: each phase that ran, from its newest stats object. */
export interface FetchFigures {
  rows?: PhaseFigures;
  keys?: PhaseFigures;
  repair?: PhaseFigures;
  /** Stats objects read (one per invocation). */
  objects: number;
}

export class FetchStatsError extends StateError {
  override name = 'FetchStatsError';
}

/**
 * The run's fetch figures, or undefined when the fetcher left none (a run from before this
 * existed, or a transform started by hand). A stats object that does not parse is an error
 * naming it: the report would otherwise show figures that silently leave an invocation out.
 */
export async function readFetchFigures(store: ObjectStore, dataset: string, runId: string): Promise<FetchFigures | undefined> {
  const prefix = fetchStatsPrefix({ name: dataset }, runId);
  const keys = (await store.list(prefix)).filter((k) => /\/fetch-(rows|keys|repair)-\d{5}\.json$/.test(k));
  if (!keys.length) return undefined;
  const newest = new Map<FetchPhase, FetchStatsRecord>();
  // Every invocation carries the phase's start; the earliest one recorded wins (a retry cannot move it later).
  const started = new Map<FetchPhase, string>();
  for (const key of keys) {
    const obj = await store.get(key);
    if (!obj) continue; // listed, then removed: nothing to read
    let parsed: FetchStatsRecord;
    try {
      parsed = fetchStatsRecordSchema.parse(JSON.parse(obj.body.toString('utf8')));
    } catch (err) {
      throw new FetchStatsError(
        `Fetch stats ${store.location}/${key} of dataset ${dataset} run ${runId} is not a stats object the fetcher writes ` +
          `(${(err as Error).message.split('\n')[0]}); delete it to report the run without it`,
        { cause: err },
      );
    }
    const start = started.get(parsed.phase);
    if (parsed.startedAt && (!start || Date.parse(parsed.startedAt) < Date.parse(start))) started.set(parsed.phase, parsed.startedAt);
    const seen = newest.get(parsed.phase);
    if (!seen || parsed.invocation > seen.invocation) newest.set(parsed.phase, parsed);
  }
  const figures: FetchFigures = { objects: keys.length };
  for (const [phase, r] of newest) {
    figures[phase] = {
      invocations: r.counts.invocations ?? r.invocation,
      done: r.done,
      ...(r.skipped ? { skipped: r.skipped } : {}),
      counts: r.counts,
      ...(r.checkpoint !== undefined ? { checkpoint: r.checkpoint } : {}),
      ...(r.undeclaredColumns ? { undeclaredColumns: r.undeclaredColumns } : {}),
      ...(started.has(phase) ? { startedAt: started.get(phase)! } : {}),
      lastWrittenAt: r.writtenAt,
    };
  }
  return figures;
}
