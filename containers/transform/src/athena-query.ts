/**
 * One Athena query, done right: StartQueryExecution in the workgroup, GetQueryExecution polled
 * with capped exponential backoff, FAILED/CANCELLED reasons surfaced, a timeout that stops the
 * query, and GetQueryResults followed page by page.
 */
import {
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type AthenaClient,
  type ColumnInfo,
} from '@aws-sdk/client-athena';
import type { Row } from './engine';
import { EngineError } from '../../../runtime/pipeline-error';

export interface AthenaQueryOptions {
  workgroup: string;
  /** First poll delay; doubles up to pollMaxMs. */
  pollInitialMs?: number;
  pollMaxMs?: number;
  /** Per query; the query is stopped and an error thrown when it runs longer. */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export class AthenaQueryError extends EngineError {
  override name = 'AthenaQueryError';
  constructor(
    message: string,
    readonly queryExecutionId: string | undefined,
    readonly state: string,
  ) {
    super(message);
  }
}

const NUMERIC = new Set(['tinyint', 'smallint', 'integer', 'bigint', 'double', 'float', 'real', 'decimal']);

function convert(value: string | undefined, column: ColumnInfo | undefined): unknown {
  if (value === undefined) return null;
  const type = column?.Type?.toLowerCase() ?? 'varchar';
  if (NUMERIC.has(type)) return Number(value);
  if (type === 'boolean') return value === 'true';
  return value;
}

export class AthenaQueryRunner {
  private readonly pollInitialMs: number;
  private readonly pollMaxMs: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(
    private readonly client: AthenaClient,
    private readonly opts: AthenaQueryOptions,
  ) {
    this.pollInitialMs = opts.pollInitialMs ?? 250;
    this.pollMaxMs = opts.pollMaxMs ?? 5_000;
    this.timeoutMs = opts.timeoutMs ?? 30 * 60_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = opts.now ?? Date.now;
  }

  /** Run a statement to completion; `label` names it in errors. Returns its rows (none for DDL/DML). */
  async execute(sql: string, label = 'query'): Promise<Row[]> {
    const started = this.now();
    const start = await this.client.send(new StartQueryExecutionCommand({ QueryString: sql, WorkGroup: this.opts.workgroup }));
    const id = start.QueryExecutionId;
    if (!id) throw new AthenaQueryError(`Athena returned no QueryExecutionId for ${label}`, undefined, 'UNKNOWN');
    let delay = this.pollInitialMs;
    for (;;) {
      const res = await this.client.send(new GetQueryExecutionCommand({ QueryExecutionId: id }));
      const status = res.QueryExecution?.Status;
      const state = status?.State ?? 'UNKNOWN';
      if (state === 'SUCCEEDED') break;
      if (state === 'FAILED' || state === 'CANCELLED') {
        const reason = status?.AthenaError?.ErrorMessage ?? status?.StateChangeReason ?? 'no reason given';
        throw new AthenaQueryError(`Athena ${label} ${id} ${state}: ${reason}`, id, state);
      }
      if (this.now() - started > this.timeoutMs) {
        await this.client.send(new StopQueryExecutionCommand({ QueryExecutionId: id })).catch(() => undefined);
        throw new AthenaQueryError(
          `Athena ${label} ${id} still ${state} after ${Math.round(this.timeoutMs / 1000)} s: stopped it; raise the timeout or reduce the batch`,
          id,
          'TIMEOUT',
        );
      }
      await this.sleep(delay);
      delay = Math.min(delay * 2, this.pollMaxMs);
    }
    return this.results(id);
  }

  private async results(id: string): Promise<Row[]> {
    const rows: Row[] = [];
    let token: string | undefined;
    let columns: ColumnInfo[] | undefined;
    let first = true;
    do {
      const page = await this.client.send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token }));
      columns ??= page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
      const data = page.ResultSet?.Rows ?? [];
      // The first row of the first page repeats the column names (SELECT results only).
      const skip = first && columns.length > 0 && data.length > 0 ? 1 : 0;
      for (const r of data.slice(skip)) {
        const values = r.Data ?? [];
        rows.push(Object.fromEntries(columns.map((c, i) => [c.Name ?? `_col${i}`, convert(values[i]?.VarCharValue, c)])));
      }
      first = false;
      token = page.NextToken;
    } while (token);
    return rows;
  }
}
