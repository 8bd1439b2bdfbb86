/**
 * The embedded engine: DuckDB reads the raw zone's gzipped NDJSON from a local directory and keeps
 * the curated table as zstd Parquet, hive-partitioned by event-time year, committed atomically
 * through a manifest (curated-manifest.ts):
 *
 *   <curated dir>/curated/<dataset>/table/_manifest.json
 *   <curated dir>/curated/<dataset>/table/v-<version>/event_year=YYYY/data_0.parquet
 *   <curated dir>/curated/<dataset>/marts/<mart>/data.parquet
 *   <curated dir>/curated/<dataset>/deletions/<run-id>.parquet     curated.<table>__deletions
 *   <curated dir>/curated/<dataset>/history/data.parquet           curated.<table>__history
 *   <curated dir>/curated/<dataset>/changes/<run-id>.parquet       curated.<table>__changes
 *   <curated dir>/curated/_state/<dataset>/merged-keys/<version>.parquet   keys each batch merged
 *
 * A batch runs THE merge statement (merge-sql.ts, the one Athena runs) on the years it touches
 * (the years of its rows and of the curated rows they may replace, since an event time can move)
 * loaded into a DuckDB table, writes those years under a new version directory and switches the
 * manifest.
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { faultPoint } from '../../../runtime/fault-points';
import { decodeKeyList, keyListFormatOf } from '../../../runtime/key-list';
import { curatedPrefix, transformStatePrefix } from '../../../runtime/storage-layout';
import { collectGarbage, CuratedManifestError, manifestFiles, readManifest, readManifestForRebuild, writeManifest, type CuratedManifest } from './curated-manifest';
import { CHANGE_COLUMNS, historyColumns } from './change-history-sql';
import { duckdbDialect, ident, literal } from './dialect';
import { plainValue, type HistoryTarget, type KeyScan, type Row, type StagedGroup, type TransformEngine, type UnreadableObject } from './engine';
import { deleteMergeSql, mergeSql } from './merge-sql';
import { duckDbResources } from './duckdb-resources';
import { martTableName } from './models';
import { curatedColumns, rawColumns, typedBatchSql, typedProfileSql, typedStagedSql } from './staging';

export const PARTITION_COLUMN = 'event_year';

/** Key files kept before they are folded into one. */
const MERGED_KEYS_COMPACT_AT = 32;

export interface DuckDbEngineOptions {
  dataset: DatasetConfig;
  /** Local directory mirroring the raw bucket. */
  rawDir: string;
  /** Local directory mirroring the curated bucket. */
  curatedDir: string;
  runId: string;
  /** DuckDB memory limit, e.g. '2GB' (default: DuckDB's own, 80% of RAM). */
  memoryLimit?: string;
  /** This run rebuilds curated: an unreadable manifest is replaced instead of failing the run. */
  rebuild?: boolean;
  /** Tests only: render the merge statement (to prove a mutated merge is caught). */
  renderMerge?: typeof mergeSql;
  /** Called after each statement with its wall time (the transform bench's per-phase profile). */
  onStatement?: (sql: string, ms: number) => void;
}

/** Directory of the curated table and of a mart, under the curated root. */
export const curatedTableDir = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'table');
export const martDir = (curatedDir: string, dataset: DatasetConfig, mart: string): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'marts', mart);
/** The deletions record (`curated.<table>__deletions`): one Parquet file per run that deleted rows. */
export const deletionsDir = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'deletions');
const HISTORY_PARQUET = 'FORMAT parquet, COMPRESSION zstd';
/**
 * The history of every key (`curated.<table>__history`): one Parquet file, replaced whole by
 * rename when a run changes it. Written in no particular order: sorting it by key held every
 * history row in memory at once (+150 MB of peak RSS at 100,000 rows, docs/bench.md), for a
 * row-group skip that only a lookup of a few keys would use; each run's own read of it is a
 * scan for a set of scattered keys anyway.
 */
export const historyFile = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'history', 'data.parquet');
/** The change feed (`curated.<table>__changes`): one Parquet file per run (a retried run replaces its own). */
export const changesDir = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'changes');
/** Where each batch records the keys it merged (reconciliation reads these, never raw). */
export const mergedKeysDir = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, transformStatePrefix(dataset), 'merged-keys');

const sqlList = (values: string[]): string => `[${values.map(literal).join(', ')}]`;

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await handle.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

const GUNZIP_CHUNK_BYTES = 1 << 18;

/** Decompress a gzip file to nowhere: rejects when it is truncated or corrupt. */
async function checkGzip(file: string): Promise<void> {
  // 1 MiB reads and 256 KiB output chunks: with the stream defaults (64 KiB in, 16 KiB out) the
  // per-chunk JavaScript cost was more than half of the check (263 vs 98 CPU-ms for 100,000 rows).
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), new Writable({ write: (_c, _e, cb) => cb() }));
}

const newVersion = (runId: string): string => `v-${Date.now().toString(36)}-${runId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-${randomUUID().slice(0, 8)}`;

export class DuckDbEngine implements TransformEngine {
  readonly dialect = duckdbDialect;
  /** One commit writes every year a batch touches. */
  readonly partitionsPerWrite = Number.POSITIVE_INFINITY;
  readonly curatedLocation: string;
  private readonly table: string;
  private readonly tableDir: string;
  private curatedKind: 'VIEW' | 'TABLE' | undefined;
  /** How the current group's `batch` was created (a view when every key is unique). */
  private batchKind: 'VIEW' | 'TABLE' | undefined;
  /** The current group's merge needs no MERGE: every staged key is new (see upsert). */
  private allNew = false;
  /** insertHistory wrote the history file itself: commitHistory has nothing to rewrite. */
  private historyWritten = false;
  /** The merged-keys file written last (a rebuild or deletion keeps only it). */
  private keysFile: string | undefined;
  /** Manifest version the loaded curated view reflects: a commit on top of another run's fails. */
  private baseVersion: string | undefined;
  /** Objects unreadableObjects loaded into `batch_typed` while checking them (see there). */
  private preloaded: { keys: Set<string>; loaded: boolean } | undefined;

  private constructor(
    private readonly opts: DuckDbEngineOptions,
    private readonly db: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {
    this.table = tableName(opts.dataset);
    this.tableDir = curatedTableDir(opts.curatedDir, opts.dataset);
    this.curatedLocation = this.tableDir;
  }

  static async open(opts: DuckDbEngineOptions): Promise<DuckDbEngine> {
    // Bounded memory, threads and a spill directory (never DuckDB's `.tmp` in the working
    // directory, read-only in the container): see duckdb-resources.ts.
    const db = await DuckDBInstance.create(':memory:', { ...duckDbResources({ ...(opts.memoryLimit ? { memoryLimit: opts.memoryLimit } : {}) }) });
    const conn = await db.connect();
    await conn.run('CREATE SCHEMA IF NOT EXISTS curated');
    return new DuckDbEngine(opts, db, conn);
  }

  private async timed<T>(sql: string, run: () => Promise<T>): Promise<T> {
    if (!this.opts.onStatement) return run();
    const start = performance.now();
    try {
      return await run();
    } finally {
      this.opts.onStatement(sql, performance.now() - start);
    }
  }

  private async exec(sql: string): Promise<void> {
    await this.timed(sql, () => this.conn.run(sql));
  }

  async rows(sql: string): Promise<Row[]> {
    const reader = await this.timed(sql, () => this.conn.runAndReadAll(sql));
    return reader.getRowObjectsJS().map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plainValue(v)])));
  }

  tableRef(model: string): string {
    return model === 'curated'
      ? `curated.${ident(this.table)}`
      : `curated.${ident(martTableName(this.table, model))}`;
  }

  get dataset(): DatasetConfig {
    return this.opts.dataset;
  }

  rawKeyOf(sourceObject: string): string {
    return path.relative(this.opts.rawDir, sourceObject);
  }

  private columnList(): string {
    return curatedColumns(this.opts.dataset).map((c) => ident(c.name)).join(', ');
  }

  private columnDdl(): string {
    return curatedColumns(this.opts.dataset)
      .map((c) => `${ident(c.name)} ${c.type}`)
      .join(', ');
  }

  /** (Re)point curated.<table> at the files the manifest names, or an empty typed table. */
  private async refreshCuratedView(): Promise<void> {
    const ref = this.tableRef('curated');
    if (this.curatedKind) await this.exec(`DROP ${this.curatedKind} ${ref}`);
    const manifest = this.readCurrentManifest();
    this.baseVersion = manifest.version;
    const files = manifestFiles(this.tableDir, manifest);
    if (files.length) {
      await this.exec(`CREATE VIEW ${ref} AS ${curatedParquetSelect(this.opts.dataset, this.tableDir, await this.parquetColumns(files), files)}`);
      this.curatedKind = 'VIEW';
    } else {
      await this.exec(`CREATE TABLE ${ref} (${this.columnDdl()})`);
      this.curatedKind = 'TABLE';
    }
  }

  private readCurrentManifest(): CuratedManifest {
    return this.opts.rebuild ? readManifestForRebuild(this.tableDir) : readManifest(this.tableDir);
  }

  private async parquetColumns(files: string[]): Promise<Set<string>> {
    const rows = await this.rows(`DESCRIBE SELECT * FROM read_parquet(${sqlList(files)}, hive_partitioning = true, union_by_name = true)`);
    return new Set(rows.map((r) => String(r.column_name)));
  }

  /** Clean what a crashed run left (unnamed versions, old scratch), then open the table. */
  async prepare(): Promise<void> {
    try {
      await collectGarbage(this.tableDir, readManifest(this.tableDir));
    } catch (err) {
      // A rebuild over an unreadable manifest keeps every file until its own commit names the new ones.
      if (!(this.opts.rebuild && err instanceof CuratedManifestError)) throw err;
    }
    const legacyScratch = path.join(this.opts.curatedDir, '.transform-scratch');
    if (existsSync(legacyScratch)) {
      for (const e of await readdir(legacyScratch)) {
        if (e.startsWith(`${this.opts.dataset.name}-`)) await rm(path.join(legacyScratch, e), { recursive: true, force: true });
      }
    }
    await this.refreshCuratedView();
  }

  private rawPaths(rawKeys: string[]): string[] {
    return rawKeys.map((k) => path.join(this.opts.rawDir, k));
  }

  /**
   * Objects that cannot be read whole. DuckDB reads a truncated or corrupt gzip partly and without
   * an error (it stops at the damage; the trailer's CRC is not checked), so each object is
   * decompressed here to its end, and meanwhile DuckDB already types the rows of all of them
   * (the load mergeBatch needs): the two reads overlap instead of following each other.
   * mergeBatch drops the rows of any object left out before anything is derived from them.
   */
  async unreadableObjects(rawKeys: string[]): Promise<UnreadableObject[]> {
    if (!rawKeys.length) return [];
    // A load that fails (an object DuckDB cannot even open) is simply redone by mergeBatch
    // without the objects found unreadable; an error it then still meets is reported there.
    const load = this.loadTyped(rawKeys).then(
      () => true,
      () => false,
    );
    const bad: UnreadableObject[] = [];
    const check = async (key: string): Promise<void> => {
      const file = path.join(this.opts.rawDir, key);
      try {
        if (await isGzip(file)) await checkGzip(file);
      } catch (err) {
        bad.push({ key, error: (err as Error).message });
      }
    };
    try {
      // zlib works on libuv's thread pool: a few objects at a time use the cores the reader will.
      for (let i = 0; i < rawKeys.length; i += 4) await Promise.all(rawKeys.slice(i, i + 4).map(check));
    } finally {
      this.preloaded = { keys: new Set(rawKeys), loaded: await load };
    }
    return bad.sort((a, b) => a.key.localeCompare(b.key));
  }

  /** `batch_typed`: every row of the objects typed once, with its content hash and profile flags. */
  private async loadTyped(rawKeys: string[]): Promise<void> {
    await this.exec(`CREATE OR REPLACE TEMP TABLE batch_typed AS ${typedBatchSql(this.opts.dataset, this.dialect, await this.rawReader(rawKeys), '__source_object')}`);
  }

  /**
   * Make `batch_typed` hold exactly the rows of `rawKeys`: the load unreadableObjects started,
   * without the objects left out (quarantined), or a new load.
   */
  private async typedBatch(rawKeys: string[]): Promise<void> {
    const pre = this.preloaded;
    this.preloaded = undefined;
    if (!pre?.loaded || !rawKeys.every((k) => pre.keys.has(k))) {
      await this.loadTyped(rawKeys);
      return;
    }
    if (rawKeys.length < pre.keys.size) {
      const kept = rawKeys.length ? sqlList(this.rawPaths(rawKeys)) : '[]';
      await this.exec(`DELETE FROM batch_typed WHERE NOT list_contains(${kept}, __source_object)`);
    }
  }

  /** A read_ndjson over raw objects with every column declared (absent columns read as NULL). */
  private async rawReader(rawKeys: string[], columns = rawColumns(this.opts.dataset)): Promise<string> {
    const files = this.rawPaths(rawKeys);
    const gz: string[] = [];
    const plain: string[] = [];
    for (const f of files) {
      if (await isGzip(f)) gz.push(f);
      else plain.push(f);
    }
    const cols = `{${columns.map((c) => `${literal(c.name)}: ${literal(c.kind === 'json' ? 'JSON' : 'VARCHAR')}`).join(', ')}}`;
    const read = (list: string[], compression: string): string =>
      `SELECT * FROM read_ndjson(${sqlList(list)}, columns = ${cols}, format = 'newline_delimited', ignore_errors = true, ` +
      `compression = '${compression}', filename = '__source_object', maximum_object_size = 67108864)`;
    const parts = [...(gz.length ? [read(gz, 'gzip')] : []), ...(plain.length ? [read(plain, 'none')] : [])];
    return parts.length ? `(${parts.join(' UNION ALL ')})` : `(SELECT ${columns.map((c) => `CAST(NULL AS VARCHAR) AS ${ident(c.name)}`).join(', ')}, '' AS __source_object WHERE FALSE)`;
  }

  // --- merge primitives (the algorithm is merge-algorithm.ts) ---

  async beginRebuild(): Promise<void> {}

  /**
   * One group: every raw object typed in one pass (with its content hash and the flags the
   * profile counts); the version ranking runs only when some key occurs more than once.
   */
  async *stageGroups(rawKeys: string[]): AsyncIterable<StagedGroup> {
    const d = this.opts.dataset;
    await this.typedBatch(rawKeys);
    const [profile = {}] = await this.rows(typedProfileSql(d, 'batch_typed'));
    const unique = Number(profile.key_partitions ?? 0) === Number(profile.keyed_rows ?? 0);
    if (unique) {
      await this.exec(`CREATE OR REPLACE TEMP VIEW batch AS ${typedStagedSql(d, 'batch_typed', true)}`);
    } else {
      // batch_typed stays until the group ends: the history reads every version in it.
      await this.exec(`CREATE OR REPLACE TEMP TABLE batch AS ${typedStagedSql(d, 'batch_typed', false)}`);
    }
    this.batchKind = unique ? 'VIEW' : 'TABLE';
    yield { staged: 'SELECT * FROM batch', profile, versions: typedStagedSql(d, 'batch_typed', true) };
  }

  /**
   * The merge target: the years of the batch rows and of the curated rows they may replace (an
   * event time can move), so every curated row a batch key can match is in it. A rebuild starts
   * from nothing.
   */
  async mergeTarget(_group: StagedGroup, rebuild: boolean): Promise<string> {
    const d = this.opts.dataset;
    const pk = ident(d.primaryKey);
    const event = ident(d.eventTimeColumn);
    const existing = this.tableRef('curated');
    const year = (e: string): string => `coalesce(${this.dialect.year(e)}, -1)`;
    await this.exec(`CREATE OR REPLACE TEMP TABLE affected AS
      SELECT DISTINCT ${year(event)} AS y FROM batch
      ${rebuild ? '' : `UNION SELECT DISTINCT ${year(`e.${event}`)} FROM ${existing} e SEMI JOIN batch b ON e.${pk} = b.${pk}`}`);
    await this.exec(`CREATE OR REPLACE TEMP TABLE merge_target AS
      SELECT ${this.columnList()} FROM ${existing} WHERE ${rebuild ? 'FALSE' : `${year(event)} IN (SELECT y FROM affected)`}`);
    this.allNew = false;
    return 'merge_target';
  }

  async recordMergedKeys(): Promise<void> {
    this.keysFile = await this.writeMergedKeys(newVersion(this.opts.runId));
  }

  async upsert(group: StagedGroup, target: string, _years: number[], allNew: boolean): Promise<void> {
    // No staged key matches a curated row (a first load, a rebuild, a batch of new keys): the
    // merge would insert every staged row and touch nothing else, so the commit writes the
    // target's rows and the staged ones without copying them into the target first.
    if (allNew) this.allNew = true;
    else await this.exec((this.opts.renderMerge ?? mergeSql)(this.opts.dataset, this.dialect, group.staged, target));
  }

  async endGroup(_group: StagedGroup, changed: boolean, rebuild: boolean): Promise<void> {
    if (changed || rebuild) {
      const affected = (await this.rows('SELECT y FROM affected ORDER BY y')).map((r) => Number(r.y));
      const names = this.columnList();
      const rows = this.allNew ? `(SELECT ${names} FROM merge_target UNION ALL SELECT ${names} FROM batch)` : 'merge_target';
      await this.commit(affected, rebuild, rows);
    }
    await this.exec(`DROP ${this.batchKind ?? 'VIEW'} IF EXISTS batch`);
    for (const t of ['merge_target', 'batch_typed', 'affected']) await this.exec(`DROP TABLE IF EXISTS ${t}`);
    await this.refreshCuratedView();
  }

  async finishRebuild(): Promise<void> {}

  private async writeMergedKeys(version: string): Promise<string> {
    const dir = mergedKeysDir(this.opts.curatedDir, this.opts.dataset);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${version}.parquet`);
    const tmp = `${file}.tmp`;
    await this.exec(`COPY (SELECT CAST(${ident(this.opts.dataset.primaryKey)} AS VARCHAR) AS key, __source_object AS object FROM batch)
      TO ${literal(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(tmp, file);
    return file;
  }

  /**
   * Write the merged years (`rows`: the merge target, or a query giving the merged rows) under a
   * new version directory, then switch the manifest: the affected years now point at the new
   * files (a year left without rows disappears); a rebuild replaces every year. The keys were
   * recorded before (recordMergedKeys, or `forgetKeys` for a deletion), so a crash after the
   * switch never leaves merged keys unrecorded.
   */
  private async commit(years: number[], rebuild: boolean, rows = 'merge_target', forgetKeys?: (version: string) => Promise<string>): Promise<void> {
    const version = newVersion(this.opts.runId);
    const versionDir = path.join(this.tableDir, version);
    await mkdir(this.tableDir, { recursive: true });
    const event = ident(this.opts.dataset.eventTimeColumn);
    // Rows in event-time order: neighbouring timestamps compress far better (mart queries read
    // the time columns), and min/max statistics let engines skip row groups on time filters.
    const key = ident(this.opts.dataset.primaryKey);
    await this.exec(`COPY (SELECT ${this.columnList()}, ${this.dialect.year(event)} AS ${PARTITION_COLUMN} FROM ${rows} AS merged ORDER BY ${event} NULLS LAST, ${key})
      TO ${literal(versionDir)} (FORMAT parquet, PARTITION_BY (${PARTITION_COLUMN}), COMPRESSION zstd, PARQUET_VERSION 'V2')`);
    if (forgetKeys) this.keysFile = await forgetKeys(version);
    faultPoint('transform:after-scratch-write');

    const current = this.readCurrentManifest();
    if (current.version !== this.baseVersion) {
      // Another run committed since this one read curated: switching now would drop its rows.
      throw new Error(
        `Curated ${this.tableDir} was committed by another run (version ${current.version}) while run ${this.opts.runId} was merging; nothing was switched, run the transform again`,
      );
    }
    const written = existsSync(versionDir) ? await readdir(versionDir) : [];
    const partitions: Record<string, string> = rebuild ? {} : { ...current.partitions };
    for (const y of years) delete partitions[`${PARTITION_COLUMN}=${y === -1 ? '__HIVE_DEFAULT_PARTITION__' : y}`];
    for (const dir of written) partitions[dir] = path.join(version, dir);
    const next: CuratedManifest = { version, partitions, previous: current.partitions };
    await writeManifest(this.tableDir, next, () => faultPoint('transform:mid-commit'));
    faultPoint('transform:after-commit');
    await collectGarbage(this.tableDir, next);
    if (rebuild || forgetKeys) {
      // The rebuild's key set replaces every earlier batch's (a deletion's: the set without the
      // gone keys); a rebuild that staged no key leaves none.
      const dir = mergedKeysDir(this.opts.curatedDir, this.opts.dataset);
      if (existsSync(dir)) for (const f of await readdir(dir)) if (path.join(dir, f) !== this.keysFile) await rm(path.join(dir, f), { force: true });
    }
  }

  private async mergedKeyFiles(): Promise<string[]> {
    const dir = mergedKeysDir(this.opts.curatedDir, this.opts.dataset);
    return existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.parquet')).map((f) => path.join(dir, f)).sort() : [];
  }

  // --- key-scan primitives ---

  /**
   * The key lists are read here (gunzip, decode: runtime/key-list.ts) rather than by a CSV
   * reader: a key may hold any character, which no delimiter choice would survive.
   */
  async keyScanLines(keyScan: KeyScan): Promise<string> {
    await this.exec('CREATE OR REPLACE TABLE key_scan_raw (key VARCHAR)');
    const appender = await this.conn.createAppender('key_scan_raw');
    try {
      for (const part of keyScan.partKeys) {
        const text = gunzipSync(await readFile(path.join(this.opts.rawDir, part))).toString('utf8');
        for (const key of decodeKeyList(text, keyListFormatOf(part), part)) {
          appender.appendVarchar(key);
          appender.endRow();
        }
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    return 'SELECT key FROM key_scan_raw';
  }

  async scratch(name: 'source_keys' | 'gone', sql: string): Promise<string> {
    await this.exec(`CREATE OR REPLACE TEMP TABLE ${name} AS ${sql}`);
    return `SELECT * FROM ${name}`;
  }

  /** One Parquet file per run (a retried run replaces its own). */
  async recordDeletions(recordsSql: string): Promise<void> {
    const dir = deletionsDir(this.opts.curatedDir, this.opts.dataset);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${this.opts.runId.replace(/[^A-Za-z0-9._-]/g, '_')}.parquet`);
    await this.exec(`COPY (${recordsSql}) TO ${literal(`${file}.tmp`)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(`${file}.tmp`, file);
  }

  async deleteKeys(gone: string, years: number[]): Promise<void> {
    const d = this.opts.dataset;
    const pk = ident(d.primaryKey);
    const event = ident(d.eventTimeColumn);
    await this.exec(`CREATE OR REPLACE TEMP TABLE merge_target AS
      SELECT ${this.columnList()} FROM ${this.tableRef('curated')} WHERE coalesce(${this.dialect.year(event)}, -1) IN (${years.join(', ')})`);
    await this.exec(deleteMergeSql(d, gone, 'merge_target'));
    // The merged-keys record loses the gone keys (a key that comes back is recorded again when merged).
    const keyFiles = await this.mergedKeyFiles();
    await this.commit(years, false, 'merge_target', async (version) => {
      const target = path.join(mergedKeysDir(this.opts.curatedDir, d), `${version}.parquet`);
      await mkdir(path.dirname(target), { recursive: true });
      const kept = keyFiles.length
        ? `SELECT DISTINCT key, object FROM read_parquet(${sqlList(keyFiles)}) WHERE key NOT IN (SELECT CAST(${pk} AS VARCHAR) FROM (${gone}) AS g)`
        : `SELECT CAST(NULL AS VARCHAR) AS key, CAST(NULL AS VARCHAR) AS object WHERE FALSE`;
      await this.exec(`COPY (${kept}) TO ${literal(`${target}.tmp`)} (FORMAT parquet, COMPRESSION zstd)`);
      await rename(`${target}.tmp`, target);
      return target;
    });
    await this.exec('DROP TABLE IF EXISTS merge_target');
    await this.refreshCuratedView();
  }

  async dropScratch(): Promise<void> {
    for (const t of ['key_scan_raw', 'source_keys', 'gone']) await this.exec(`DROP TABLE IF EXISTS ${t}`);
  }

  // --- history and change feed primitives ---

  private parquetFiles(dir: string): string[] {
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.parquet')).map((f) => path.join(dir, f)).sort() : [];
  }

  async deletionRecords(): Promise<string> {
    const files = this.parquetFiles(deletionsDir(this.opts.curatedDir, this.opts.dataset));
    return files.length
      ? `SELECT ${ident('key')}, ${ident('detected_at')} FROM read_parquet(${sqlList(files)})`
      : `SELECT CAST(NULL AS VARCHAR) AS ${ident('key')}, CAST(NULL AS TIMESTAMP) AS ${ident('detected_at')} WHERE false`;
  }

  /** The history file's rows with every history column (columns declared after it was written read as NULL). */
  private async historyRead(file: string): Promise<string> {
    const present = await this.parquetColumns([file]);
    const cols = historyColumns(this.opts.dataset).map((c) => (present.has(c.name) ? ident(c.name) : `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`));
    return `(SELECT ${cols.join(', ')} FROM read_parquet(${literal(file)}))`;
  }

  /** The history rows of `keys`, copied into `history_target` (none for a rebuild: it starts empty). */
  async historyTarget(keys: string, rebuild: boolean): Promise<HistoryTarget> {
    const d = this.opts.dataset;
    const pk = ident(d.primaryKey);
    const file = historyFile(this.opts.curatedDir, d);
    this.historyWritten = false;
    await this.exec(`CREATE OR REPLACE TEMP TABLE history_keys AS SELECT DISTINCT k.${pk} FROM (${keys}) AS k WHERE k.${pk} IS NOT NULL`);
    await this.exec(`CREATE OR REPLACE TEMP TABLE history_target (${historyColumns(d).map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`);
    let empty = true;
    if (!rebuild && existsSync(file)) {
      await this.exec(`INSERT INTO history_target SELECT * FROM ${await this.historyRead(file)} AS h WHERE h.${pk} IN (SELECT ${pk} FROM history_keys)`);
      const [count] = await this.rows('SELECT count(*) AS n FROM history_target');
      empty = Number(count?.n ?? 0) === 0;
    }
    return { target: 'history_target', keys: `SELECT ${pk} FROM history_keys`, empty };
  }

  /**
   * Without a history file (a first load) or in a rebuild, the rows are the whole history: they
   * are written as the file straight from the statement, never held in a table first.
   */
  async insertHistory(history: HistoryTarget, rows: string, rebuild: boolean): Promise<void> {
    const d = this.opts.dataset;
    const file = historyFile(this.opts.curatedDir, d);
    if (!rebuild && existsSync(file)) {
      await this.exec(`INSERT INTO ${history.target} (${historyColumns(d).map((c) => ident(c.name)).join(', ')}) ${rows}`);
      return;
    }
    await mkdir(path.dirname(file), { recursive: true });
    await this.exec(`COPY (${rows}) TO ${literal(`${file}.tmp`)} (${HISTORY_PARQUET})`);
    await rename(`${file}.tmp`, file);
    this.historyWritten = true;
  }

  /** The other keys' rows and the recomputed ones, written aside and renamed over the file. */
  async commitHistory(rebuild: boolean): Promise<void> {
    const d = this.opts.dataset;
    const pk = ident(d.primaryKey);
    const file = historyFile(this.opts.curatedDir, d);
    if (!this.historyWritten) {
      await mkdir(path.dirname(file), { recursive: true });
      const names = historyColumns(d).map((c) => ident(c.name)).join(', ');
      const kept =
        !rebuild && existsSync(file)
          ? `SELECT ${names} FROM ${await this.historyRead(file)} AS h WHERE NOT EXISTS (SELECT 1 FROM history_keys AS k WHERE k.${pk} = h.${pk}) UNION ALL `
          : '';
      await this.exec(`COPY (${kept}SELECT ${names} FROM history_target) TO ${literal(`${file}.tmp`)} (${HISTORY_PARQUET})`);
      await rename(`${file}.tmp`, file);
    }
    this.historyWritten = false;
    for (const t of ['history_target', 'history_keys']) await this.exec(`DROP TABLE IF EXISTS ${t}`);
  }

  private get changesFile(): string {
    return path.join(changesDir(this.opts.curatedDir, this.opts.dataset), `${this.opts.runId.replace(/[^A-Za-z0-9._-]/g, '_')}.parquet`);
  }

  /** This run's records so far, in `changes_target`. */
  async changesTarget(): Promise<string> {
    await this.exec(`CREATE OR REPLACE TEMP TABLE changes_target (${CHANGE_COLUMNS.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`);
    if (existsSync(this.changesFile)) {
      await this.exec(`INSERT INTO changes_target SELECT ${CHANGE_COLUMNS.map((c) => ident(c.name)).join(', ')} FROM read_parquet(${literal(this.changesFile)})`);
    }
    return 'changes_target';
  }

  async commitChanges(): Promise<void> {
    const file = this.changesFile;
    await mkdir(path.dirname(file), { recursive: true });
    await this.exec(`COPY (SELECT * FROM changes_target ORDER BY ${ident('change')}, ${ident('key')}) TO ${literal(`${file}.tmp`)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(`${file}.tmp`, file);
    await this.exec('DROP TABLE IF EXISTS changes_target');
  }

  async changesRef(): Promise<string> {
    const files = this.parquetFiles(changesDir(this.opts.curatedDir, this.opts.dataset));
    const cols = CHANGE_COLUMNS.map((c) => ident(c.name)).join(', ');
    return files.length
      ? `(SELECT ${cols} FROM read_parquet(${sqlList(files)}))`
      : `(SELECT ${CHANGE_COLUMNS.map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`).join(', ')} WHERE false)`;
  }

  async materializeMart(name: string, selectSql: string): Promise<number> {
    const dir = martDir(this.opts.curatedDir, this.opts.dataset, name);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'data.parquet');
    const tmp = path.join(dir, `.data-${this.opts.runId}.parquet.tmp`);
    await this.exec(`COPY (${selectSql}) TO ${literal(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(tmp, file);
    const ref = this.tableRef(name);
    await this.exec(`CREATE OR REPLACE VIEW ${ref} AS SELECT * FROM read_parquet(${literal(file)})`);
    return Number((await this.rows(`SELECT count(*) AS n FROM ${ref}`))[0]?.n ?? 0);
  }

  async existingModel(name: string): Promise<boolean> {
    const file = path.join(martDir(this.opts.curatedDir, this.opts.dataset, name), 'data.parquet');
    if (!existsSync(file)) return false;
    await this.exec(`CREATE OR REPLACE VIEW ${this.tableRef(name)} AS SELECT * FROM read_parquet(${literal(file)})`);
    return true;
  }

  async mergedKeys(): Promise<number> {
    const dir = mergedKeysDir(this.opts.curatedDir, this.opts.dataset);
    const list = async (): Promise<string[]> =>
      existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.parquet')).map((f) => path.join(dir, f)).sort() : [];
    let files = await list();
    if (!files.length) return 0;
    if (files.length > MERGED_KEYS_COMPACT_AT) {
      // One file per batch adds up; fold them into one (a crash here leaves duplicates, which
      // count(DISTINCT) ignores).
      const merged = path.join(dir, `${newVersion(this.opts.runId)}.parquet`);
      await this.exec(`COPY (SELECT DISTINCT key, object FROM read_parquet(${sqlList(files)})) TO ${literal(`${merged}.tmp`)} (FORMAT parquet, COMPRESSION zstd)`);
      await rename(`${merged}.tmp`, merged);
      for (const f of files) await rm(f, { force: true });
      files = await list();
    }
    const rows = await this.rows(`SELECT count(DISTINCT key) AS n FROM read_parquet(${sqlList(files)})`);
    return Number(rows[0]?.n ?? 0);
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.closeSync();
    this.db.closeSync();
  }
}

/**
 * SELECT of the curated columns over the Parquet files the manifest names (the partition column
 * left out); columns added to the dataset after the files were written read as NULL. Callers
 * check that `files` is not empty (read_parquet of an empty list is an error).
 */
export function curatedParquetSelect(dataset: DatasetConfig, tableDir: string, present?: Set<string>, files = manifestFiles(tableDir)): string {
  const cols = curatedColumns(dataset)
    .map((c) => (present && !present.has(c.name) ? `CAST(NULL AS ${c.type}) AS ${ident(c.name)}` : ident(c.name)))
    .join(', ');
  return `SELECT ${cols} FROM read_parquet(${sqlList(files)}, hive_partitioning = true, union_by_name = true, hive_types = {'${PARTITION_COLUMN}': INTEGER})`;
}
