/**
 * How much of the machine the DuckDB engine may use, chosen deliberately instead of DuckDB's
 * defaults (80% of RAM, every core, spill files in the working directory): the local pipeline
 * runs the transform in the same process as the fetcher and the local Firehose, and the whole
 * run has to fit 1.5 GB of peak RSS (docs/bench.md, "The whole pipeline at real size").
 *
 *   DUCKDB_MEMORY_LIMIT             memory_limit, e.g. `1GB`, `800MB` (default below)
 *   DUCKDB_THREADS                  threads (default: the cores this process may use)
 *   DUCKDB_TEMP_DIRECTORY           where operators over the limit spill (default: the OS temp
 *                                   directory; the local pipeline points it into its data directory)
 *   DUCKDB_PRESERVE_INSERTION_ORDER `true` / `false` (default false: every result that needs an
 *                                   order has ORDER BY, and keeping insertion order makes large
 *                                   scans and COPYs buffer rows)
 *
 * Default memory limit: 600 MB locally (measured: DuckDB's RSS overshoots memory_limit by 0.4-0.5 GB
 * at 650,000 rows, and the transform process has ~0.2 GB besides); in a container with a memory limit (a Fargate task running
 * ENGINE=duckdb), 75% of that limit, leaving the rest to Node and the page cache.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { EngineError } from '../../../runtime/pipeline-error';

export const DEFAULT_LOCAL_MEMORY_LIMIT = '600MB';
/** Share of a container's memory limit DuckDB may take. */
export const CONTAINER_MEMORY_SHARE = 0.75;

export interface DuckDbResources {
  memory_limit: string;
  threads: string;
  temp_directory: string;
  preserve_insertion_order: string;
}

export class DuckDbResourcesError extends EngineError {
  override name = 'DuckDbResourcesError';
}

/** The cgroup (v2, then v1) memory limit of this process in bytes, if there is one. */
function containerMemoryLimitBytes(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const n = Number(readFileSync(file, 'utf8').trim());
      // "max" (NaN) or a huge v1 sentinel: no limit.
      if (Number.isFinite(n) && n > 0 && n < 2 ** 60) return n;
    } catch {
      // Not this cgroup version, or not Linux.
    }
  }
  return undefined;
}

/**
 * DuckDB's settings for this process, from the environment with the defaults above; every bad
 * value is a one-line error naming the variable. Pass the result as the instance's options.
 * `memoryLimit` (DuckDbEngineOptions) wins over the environment.
 */
export function duckDbResources(opts: { memoryLimit?: string } = {}, env: NodeJS.ProcessEnv = process.env): DuckDbResources {
  const memory = opts.memoryLimit ?? env.DUCKDB_MEMORY_LIMIT?.trim();
  if (memory !== undefined && !/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(memory)) {
    throw new DuckDbResourcesError(`DUCKDB_MEMORY_LIMIT must be a size like 1GB or 800MB, got "${memory}"`);
  }
  const inContainer = env.ECS_CONTAINER_METADATA_URI_V4 !== undefined || env.ECS_CONTAINER_METADATA_URI !== undefined;
  const containerLimit = inContainer ? containerMemoryLimitBytes() : undefined;
  const memoryLimit = memory ?? (containerLimit ? `${Math.floor((containerLimit * CONTAINER_MEMORY_SHARE) / 2 ** 20)}MiB` : DEFAULT_LOCAL_MEMORY_LIMIT);

  const threadsValue = env.DUCKDB_THREADS?.trim();
  const threads = threadsValue ? Number(threadsValue) : availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new DuckDbResourcesError(`DUCKDB_THREADS must be a whole number ≥ 1, got "${threadsValue}"`);

  const order = env.DUCKDB_PRESERVE_INSERTION_ORDER?.trim().toLowerCase() || 'false';
  if (order !== 'true' && order !== 'false') throw new DuckDbResourcesError(`DUCKDB_PRESERVE_INSERTION_ORDER must be true or false, got "${env.DUCKDB_PRESERVE_INSERTION_ORDER}"`);

  // One directory per process: two transforms sharing a temp directory would delete each other's spill files.
  const tempDirectory = path.join(env.DUCKDB_TEMP_DIRECTORY?.trim() || tmpdir(), `duckdb-spill-${process.pid}`);
  // DuckDB creates the last level only, and only once it spills: a missing parent fails the query then.
  mkdirSync(tempDirectory, { recursive: true });
  return {
    memory_limit: memoryLimit,
    threads: String(threads),
    temp_directory: tempDirectory,
    preserve_insertion_order: order,
  };
}
