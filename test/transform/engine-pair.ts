/**
 * The same raw zone transformed by both engines: DuckDB (the embedded default) and the production
 * AthenaEngine over the local Athena endpoint on a real Trino (the shared test server). Each run
 * goes to both with the same options and clock; what a user sees (summary counters, curated,
 * every mart, every data-test outcome) is then compared.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { tableName, type DatasetConfig } from '../../runtime/dataset-config';
import { openObjectStore, type ObjectStore } from '../../runtime/object-store';
import { deletionsTableName } from '../../containers/transform/src/athena-sql';
import { changesTableName, historyTableName } from '../../containers/transform/src/change-history-sql';
import { changesDir, deletionsDir, DuckDbEngine, historyFile } from '../../containers/transform/src/duckdb-engine';
import type { Row, TransformEngine } from '../../containers/transform/src/engine';
import { runTransform, type RunSummary, type RunTransformOptions } from '../../containers/transform/src/transform';
import { localAthenaEngine, prepareAthenaCatalog, startLocalAthena, type AthenaCatalogOptions, type LocalAthena } from '../../local/athena-local';
import { trinoMetastoreDir, trinoUrl, uniqueSuffix } from '../support/trino';

export const ENGINES = ['duckdb', 'athena'] as const;
export type EngineName = (typeof ENGINES)[number];

/** One local Athena endpoint per test file, over the run's shared Trino. */
export async function testAthena(): Promise<LocalAthena> {
  const root = mkdtempSync(path.join(tmpdir(), 'athena-results-'));
  return startLocalAthena({ resultsDir: root, trino: { url: trinoUrl!, metastoreDir: trinoMetastoreDir! } });
}

/** The suite's local Athena (testAthena): started before its tests, handed to `ready`, closed after. */
export function suiteAthena(ready: (athena: LocalAthena) => void): void {
  let athena: LocalAthena | undefined;
  before(async () => {
    athena = await testAthena();
    ready(athena);
  });
  after(async () => {
    await athena?.close();
  });
}

type Extra = Partial<Omit<RunTransformOptions, 'engine' | 'rawStore' | 'curatedStore' | 'runId'>>;

export class EnginePair {
  readonly rawDir: string;
  readonly rawStore: ObjectStore;
  readonly curatedDir: Record<EngineName, string>;
  readonly catalog: AthenaCatalogOptions;

  private constructor(
    readonly athena: LocalAthena,
    readonly dataset: DatasetConfig,
    root: string,
  ) {
    this.rawDir = path.join(root, 'raw');
    this.rawStore = openObjectStore(this.rawDir);
    this.curatedDir = { duckdb: path.join(root, 'curated-duckdb'), athena: path.join(root, 'curated-athena') };
    const sfx = uniqueSuffix();
    this.catalog = { dataset, rawDir: this.rawDir, curatedDir: this.curatedDir.athena, rawDatabase: `raw_${sfx}`, curatedDatabase: `curated_${sfx}` };
  }

  static async create(athena: LocalAthena, dataset: DatasetConfig): Promise<EnginePair> {
    const pair = new EnginePair(athena, dataset, mkdtempSync(path.join(tmpdir(), 'engine-pair-')));
    await prepareAthenaCatalog(athena, pair.catalog);
    return pair;
  }

  /** A deploy of a changed dataset definition: the raw Glue table is synthesized again. */
  async redeploy(dataset: DatasetConfig): Promise<void> {
    await prepareAthenaCatalog(this.athena, { ...this.catalog, dataset });
  }

  athenaEngine(runId: string, dataset = this.dataset, extra: Partial<Parameters<typeof localAthenaEngine>[1]> = {}): TransformEngine {
    return localAthenaEngine(this.athena, { ...this.catalog, dataset, runId, ...extra });
  }

  /** One run on each engine (DuckDB first); a run that throws yields its error. */
  async run(runId: string, extra: Extra = {}, dataset = this.dataset): Promise<Record<EngineName, RunSummary | Error>> {
    const out = {} as Record<EngineName, RunSummary | Error>;
    for (const name of ENGINES) {
      const engine = name === 'duckdb' ? ('duckdb' as const) : this.athenaEngine(runId, dataset);
      out[name] = await runTransform({
        dataset,
        engine,
        rawStore: this.rawStore,
        curatedStore: openObjectStore(this.curatedDir[name]),
        runId,
        now: () => new Date('2024-02-02T00:00:00.000Z'),
        ...extra,
      }).catch((err: unknown) => err as Error);
    }
    return out;
  }

  /** Both runs succeed with equal summaries; returns them. */
  async runAgreeing(runId: string, extra: Extra = {}, dataset = this.dataset): Promise<Record<EngineName, RunSummary>> {
    const r = await this.run(runId, extra, dataset);
    for (const name of ENGINES) if (r[name] instanceof Error) throw Object.assign(r[name], { message: `${name}: ${(r[name] as Error).message}` });
    const s = r as Record<EngineName, RunSummary>;
    assert.deepEqual(comparable(s.athena), comparable(s.duckdb), `run ${runId}: the engines' summaries differ`);
    return s;
  }

  /** Rows of a query on each engine; `sql` names tables through `ref` ('curated' or a mart). */
  async rows(sql: (ref: (model: string) => string) => string, marts: string[] = [], dataset = this.dataset): Promise<Record<EngineName, Row[]>> {
    const duck = await DuckDbEngine.open({ dataset, rawDir: this.rawDir, curatedDir: this.curatedDir.duckdb, runId: 'read' });
    try {
      await duck.prepare();
      for (const m of marts) assert.ok(await duck.existingModel(m), `DuckDB has no mart ${m}`);
      const athena = this.athenaEngine('read', dataset);
      return { duckdb: normalize(await duck.rows(sql((m) => duck.tableRef(m)))), athena: normalize(await athena.rows(sql((m) => athena.tableRef(m)))) };
    } finally {
      await duck.close();
    }
  }

  /** The deletions record (`curated.<table>__deletions`) of each engine: key and run, in key order. */
  async deletions(): Promise<Record<EngineName, Row[]>> {
    const duck = await DuckDbEngine.open({ dataset: this.dataset, rawDir: this.rawDir, curatedDir: this.curatedDir.duckdb, runId: 'read' });
    try {
      const files = path.join(deletionsDir(this.curatedDir.duckdb, this.dataset), '*.parquet');
      const athena = this.athenaEngine('read');
      return {
        duckdb: await duck.rows(`SELECT key, run_id FROM read_parquet('${files}') ORDER BY key`),
        athena: await athena.rows(`SELECT key, run_id FROM "${this.catalog.curatedDatabase}"."${deletionsTableName(tableName(this.dataset))}" ORDER BY key`),
      };
    } finally {
      await duck.close();
    }
  }

  /**
   * A query of the history (`h`) or the change feed (`c`) on each engine: DuckDB's files, Athena's
   * Iceberg tables. Values as a person reads them (see normalize).
   */
  async feedRows(sql: (t: { history: string; changes: string }) => string): Promise<Record<EngineName, Row[]>> {
    const duck = await DuckDbEngine.open({ dataset: this.dataset, rawDir: this.rawDir, curatedDir: this.curatedDir.duckdb, runId: 'read' });
    try {
      const db = this.catalog.curatedDatabase;
      const table = tableName(this.dataset);
      const changes = path.join(changesDir(this.curatedDir.duckdb, this.dataset), '*.parquet');
      const duckTables = { history: `read_parquet('${historyFile(this.curatedDir.duckdb, this.dataset)}')`, changes: `read_parquet('${changes}')` };
      const athenaTables = { history: `"${db}"."${historyTableName(table)}"`, changes: `"${db}"."${changesTableName(table)}"` };
      return { duckdb: normalize(await duck.rows(sql(duckTables))), athena: normalize(await this.athenaEngine('read').rows(sql(athenaTables))) };
    } finally {
      await duck.close();
    }
  }

  /** The query answers the same rows on both engines; returns them. */
  async agree(sql: (ref: (model: string) => string) => string, marts: string[] = [], dataset = this.dataset): Promise<Row[]> {
    const r = await this.rows(sql, marts, dataset);
    assert.deepEqual(r.athena, r.duckdb);
    return r.duckdb;
  }
}

const TRINO_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/;

/**
 * Values as a person reads them: Athena answers timestamps as text ("2024-01-02 03:04:05.000000"),
 * DuckDB as instants; both become ISO strings. Nothing else is converted.
 */
function normalize(rows: Row[]): Row[] {
  return rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => {
        const m = typeof v === 'string' ? TRINO_TIMESTAMP.exec(v) : null;
        return [k, m ? `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z` : v];
      }),
    ),
  );
}

/** What a run reports, less what differs by design (locations, timings, the engine's own name and maintenance). */
export function comparable(s: RunSummary): Record<string, unknown> {
  const { source, ...reconciliation } = s.reconciliation;
  return {
    status: s.status,
    rawObjects: s.rawObjects,
    quarantinedObjects: s.quarantinedObjects.map((q) => q.key),
    rebuild: s.rebuild,
    reconciliation: { ...reconciliation, ...(source ? { source: { ...source, missingKeysLocation: source.missingKeysLocation ? 'set' : undefined } } : {}) },
    rowsDeleted: s.rowsDeleted,
    missingKeys: s.missingKeys,
    keysetApplied: s.keysetApplied,
    repairNeeded: s.repairNeeded,
    rowsRead: s.rowsRead,
    malformedRows: s.malformedRows,
    rowsWithoutKey: s.rowsWithoutKey,
    duplicatesRemoved: s.duplicatesRemoved,
    rowsInserted: s.rowsInserted,
    rowsUpdated: s.rowsUpdated,
    rowsUnchanged: s.rowsUnchanged,
    castFailures: s.castFailures,
    partitionsWritten: s.partitionsWritten,
    rowsWritten: s.rowsWritten,
    curatedRows: s.curatedRows,
    marts: s.marts.map((m) => ({ name: m.name, rows: m.rows })),
    skippedModels: s.skippedModels,
    selection: s.selection,
    tests: s.tests.results.map((t) => ({ name: t.name, model: t.model, severity: t.severity, status: t.status, failing: t.failing, freshness: t.freshness })),
    failedErrorTests: s.failedErrorTests,
    schemaDrift: s.schemaDrift,
    freshness: s.freshness,
    changes: s.changes,
  };
}
