/**
 * A local Amazon Athena (engine version 3) endpoint on 127.0.0.1 that executes on a real Trino,
 * speaking the AWS JSON 1.1 protocol as @aws-sdk/client-athena sends it, so the transform's
 * AthenaQueryRunner runs against it with only `endpoint` changed.
 *
 * What it models, because the transform depends on it:
 * - StartQueryExecution answers at once with a UUID; the statement runs on Trino in the
 *   background, QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; workgroups as configured
 *   (unknown → "WorkGroup ... is not found"), ClientRequestToken idempotency, the 262,144-byte
 *   query limit, BytesScannedCutoffPerQuery (the query is cancelled past it);
 * - Athena-only statement forms translated to Trino's (./athena-translate.ts), everything else
 *   verbatim, in the `hive` catalog with QueryExecutionContext.Database as the schema;
 * - GetQueryExecution with Athena's StatementType, output location (`<id>.csv`, `.txt` for
 *   DDL/UTILITY), failure reasons as Athena v3 shows them (`COLUMN_NOT_FOUND: line 1:8: ...`) and
 *   AthenaError categories, statistics (DataScannedInBytes from Trino's physical input bytes);
 * - GetQueryResults paged (MaxResults ≤ 1000, NextToken), the header row first for a SELECT, values
 *   rendered as Athena renders them (athenaValue below), and the CSV Athena writes to the
 *   workgroup's output location;
 * - StopQueryExecution (cancels on Trino); GetWorkGroup, BatchGetQueryExecution and
 *   ListQueryExecutions minimally; any other operation → UnknownOperationException.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { readJsonRequest, sendAwsJson } from './aws-json-protocol';
import { athenaStatementType, translateAthenaStatement, type AthenaStatementType } from './athena-translate';
import type { TrinoClient, TrinoColumn, TrinoError, TrinoResult, TrinoStats, TrinoTypeSignature } from './trino-client';
import { RequestRefusedError } from '../runtime/pipeline-error';

/** StartQueryExecution's QueryString limit (API reference: length 1-262144). */
export const ATHENA_MAX_QUERY_BYTES = 262_144;
export const ATHENA_ENGINE_VERSION = 'Athena engine version 3';
/** How long a statement Trino refused with NO_NODES_AVAILABLE (its start-up) is sent again. */
const NO_NODES_RETRY_MS = 60_000;
const MAX_HTTP_BODY_BYTES = 2 * 1024 * 1024;

export interface AthenaWorkgroupConfig {
  /** Local directory standing for the workgroup's enforced S3 result location. */
  outputDir: string;
  /** What GetQueryExecution reports as the location (default `local://<outputDir>/`). */
  outputLocation?: string;
  /** Athena's per-query data usage control: a query scanning more is cancelled. */
  bytesScannedCutoffPerQuery?: number;
}

export interface AthenaServerOptions {
  trino: TrinoClient;
  workgroups: Record<string, AthenaWorkgroupConfig>;
  /** The catalog a statement without one resolves in (AwsDataCatalog's stand-in). */
  defaultCatalog?: 'hive';
  /** Stands for every table's vacuum_max_snapshot_age_seconds (Trino cannot store it); default 432000. */
  vacuumMaxSnapshotAgeSeconds?: number;
  log?: (line: string) => void;
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface AthenaServer {
  endpoint: string;
  close(): Promise<void>;
}

type State = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

interface QueryRecord {
  id: string;
  sql: string;
  workgroup: string;
  database: string;
  catalog: string;
  statementType: AthenaStatementType;
  state: State;
  reason?: string;
  error?: { category: number; type: number; retryable: boolean; message: string };
  submitted: Date;
  completed?: Date;
  outputLocation: string;
  trinoQueryId?: string;
  stats?: TrinoStats;
  result?: TrinoResult;
  token?: string;
  run?: Promise<void>;
}

class ApiError extends RequestRefusedError {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    readonly athenaErrorCode?: string,
  ) {
    super(message);
  }
}

const invalid = (message: string, code = 'INVALID_INPUT'): ApiError => new ApiError('InvalidRequestException', message, 400, code);

// ---------------------------------------------------------------------------------------------
// Values as Athena renders them.

/** Java's Double.toString (and Float.toString) of a shortest-round-trip decimal. */
export function javaDouble(value: unknown): string {
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return String(value);
  const x = Number(value);
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e-3 && abs < 1e7) {
    const s = String(x);
    return s.includes('.') ? s : `${s}.0`;
  }
  const [mantissa, exponent] = x.toExponential().split('e') as [string, string];
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exponent.replace('+', '')}`;
}

const typeArgs = (sig: TrinoTypeSignature): TrinoTypeSignature[] =>
  sig.arguments.flatMap((a) => (a.kind === 'TYPE' ? [a.value] : a.kind === 'NAMED_TYPE' ? [a.value.typeSignature] : []));

/** One value as Athena's VarCharValue (and CSV field) shows it; nested values as Java's toString. */
export function athenaValue(value: unknown, sig: TrinoTypeSignature | undefined, nested = false): string | undefined {
  if (value === null || value === undefined) return nested ? 'null' : undefined;
  const raw = sig?.rawType ?? 'varchar';
  switch (raw) {
    case 'double':
    case 'real':
      return javaDouble(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'varbinary':
      return [...Buffer.from(String(value), 'base64')].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    case 'array': {
      const el = typeArgs(sig!)[0];
      return `[${(value as unknown[]).map((v) => athenaValue(v, el, true)).join(', ')}]`;
    }
    case 'map': {
      const [k, v] = typeArgs(sig!);
      return `{${Object.entries(value as Record<string, unknown>)
        .map(([key, val]) => `${athenaValue(key, k, true)}=${athenaValue(val, v, true)}`)
        .join(', ')}}`;
    }
    case 'row': {
      const fields = sig!.arguments.map((a, i) =>
        a.kind === 'NAMED_TYPE' ? { name: a.value.fieldName?.name ?? `field${i}`, type: a.value.typeSignature } : { name: `field${i}`, type: undefined },
      );
      return `{${(value as unknown[]).map((v, i) => `${fields[i]?.name ?? `field${i}`}=${athenaValue(v, fields[i]?.type, true)}`).join(', ')}}`;
    }
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

/** Athena's type names: Trino's without parameters, `real` as Hive's `float`. */
function athenaType(sig: TrinoTypeSignature | undefined, fallback: string): string {
  const raw = (sig?.rawType ?? fallback.replace(/\(.*$/, '')).toLowerCase();
  return raw === 'real' ? 'float' : raw;
}

const PRECISION: Record<string, number> = { bigint: 19, integer: 10, smallint: 5, tinyint: 3, double: 17, real: 7, boolean: 0, date: 0 };

function columnInfo(c: TrinoColumn): Record<string, unknown> {
  const sig = c.typeSignature;
  const raw = sig?.rawType ?? c.type;
  const longs = (sig?.arguments ?? []).flatMap((a) => (a.kind === 'LONG' ? [a.value] : []));
  let precision = PRECISION[raw] ?? 0;
  let scale = 0;
  if (raw === 'varchar' || raw === 'char') precision = longs[0] ?? 2147483647;
  if (raw === 'decimal') [precision, scale] = [longs[0] ?? 38, longs[1] ?? 0];
  if (raw.startsWith('timestamp') || raw.startsWith('time')) precision = longs[0] ?? 3;
  return {
    CatalogName: 'hive',
    SchemaName: '',
    TableName: '',
    Name: c.name,
    Label: c.name,
    Type: athenaType(sig, c.type),
    Precision: precision,
    Scale: scale,
    Nullable: 'UNKNOWN',
    CaseSensitive: raw === 'varchar' || raw === 'char',
  };
}

const csvField = (v: string | undefined): string => (v === undefined ? '' : `"${v.replace(/"/g, '""')}"`);

/** Athena v3's failure category and type (Athena error catalog) for a Trino error. */
function athenaError(e: TrinoError): NonNullable<QueryRecord['error']> {
  const message = `${e.errorName}: ${e.message}`;
  switch (e.errorType) {
    case 'USER_ERROR':
      return { category: 2, type: 1000, retryable: false, message };
    case 'INSUFFICIENT_RESOURCES':
      return { category: 1, type: 0, retryable: true, message };
    case 'EXTERNAL':
      return { category: 3, type: 100, retryable: false, message };
    default:
      return { category: 1, type: 200, retryable: false, message };
  }
}

// ---------------------------------------------------------------------------------------------

class LocalAthena {
  private readonly queries = new Map<string, QueryRecord>();
  private readonly byToken = new Map<string, string>();
  private readonly catalog: string;

  constructor(private readonly opts: AthenaServerOptions) {
    this.catalog = opts.defaultCatalog ?? 'hive';
  }

  private workgroup(name: string): AthenaWorkgroupConfig {
    const wg = this.opts.workgroups[name];
    if (!wg) throw invalid(`WorkGroup ${name} is not found.`, 'INVALID_INPUT');
    return wg;
  }

  private outputLocation(wg: AthenaWorkgroupConfig): string {
    const loc = wg.outputLocation ?? `local://${path.resolve(wg.outputDir)}/`;
    return loc.endsWith('/') ? loc : `${loc}/`;
  }

  private query(id: unknown): QueryRecord {
    const q = typeof id === 'string' ? this.queries.get(id) : undefined;
    if (!q) throw invalid(`QueryExecution ${String(id)} was not found`);
    return q;
  }

  async dispatch(op: string, body: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'StartQueryExecution':
        return this.start(body);
      case 'GetQueryExecution':
        return { QueryExecution: this.describe(this.query(body.QueryExecutionId)) };
      case 'BatchGetQueryExecution': {
        const ids = (body.QueryExecutionIds as string[] | undefined) ?? [];
        return {
          QueryExecutions: ids.filter((id) => this.queries.has(id)).map((id) => this.describe(this.queries.get(id)!)),
          UnprocessedQueryExecutionIds: ids
            .filter((id) => !this.queries.has(id))
            .map((id) => ({ QueryExecutionId: id, ErrorCode: 'INVALID_INPUT', ErrorMessage: `QueryExecution ${id} was not found` })),
        };
      }
      case 'ListQueryExecutions': {
        const wg = typeof body.WorkGroup === 'string' ? body.WorkGroup : 'primary';
        this.workgroup(wg);
        return { QueryExecutionIds: [...this.queries.values()].filter((q) => q.workgroup === wg).reverse().map((q) => q.id) };
      }
      case 'GetQueryResults':
        return this.results(body);
      case 'StopQueryExecution':
        await this.stop(this.query(body.QueryExecutionId));
        return {};
      case 'GetWorkGroup': {
        const name = String(body.WorkGroup ?? '');
        const wg = this.workgroup(name);
        return {
          WorkGroup: {
            Name: name,
            State: 'ENABLED',
            Configuration: {
              ResultConfiguration: { OutputLocation: this.outputLocation(wg) },
              EnforceWorkGroupConfiguration: true,
              ...(wg.bytesScannedCutoffPerQuery !== undefined ? { BytesScannedCutoffPerQuery: wg.bytesScannedCutoffPerQuery } : {}),
              EngineVersion: { SelectedEngineVersion: ATHENA_ENGINE_VERSION, EffectiveEngineVersion: ATHENA_ENGINE_VERSION },
            },
          },
        };
      }
      default:
        throw new ApiError('UnknownOperationException', `Operation ${op || '(none)'} is not supported by the local Athena endpoint.`);
    }
  }

  private start(body: Record<string, unknown>): { QueryExecutionId: string } {
    const sql = body.QueryString;
    if (typeof sql !== 'string' || sql.length === 0) throw invalid('QueryString is required.');
    const bytes = Buffer.byteLength(sql, 'utf8');
    if (bytes > ATHENA_MAX_QUERY_BYTES) {
      throw invalid(
        `1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length less than or equal to ${ATHENA_MAX_QUERY_BYTES} (it is ${bytes} bytes)`,
      );
    }
    const workgroup = typeof body.WorkGroup === 'string' && body.WorkGroup ? body.WorkGroup : 'primary';
    const wg = this.workgroup(workgroup);
    const context = (body.QueryExecutionContext ?? {}) as { Database?: string; Catalog?: string };
    const token = typeof body.ClientRequestToken === 'string' ? body.ClientRequestToken : undefined;
    if (token !== undefined) {
      if (token.length < 32 || token.length > 128) throw invalid('ClientRequestToken must be 32-128 characters long.');
      const earlier = this.byToken.get(token);
      if (earlier) {
        const q = this.queries.get(earlier)!;
        if (q.sql !== sql || q.workgroup !== workgroup) throw invalid('Idempotent parameters do not match: this ClientRequestToken was used with another query.');
        return { QueryExecutionId: q.id };
      }
    }
    const id = randomUUID();
    const statementType = athenaStatementType(sql);
    const catalog = !context.Catalog || context.Catalog.toLowerCase() === 'awsdatacatalog' ? this.catalog : context.Catalog;
    const q: QueryRecord = {
      id,
      sql,
      workgroup,
      database: context.Database ?? 'default',
      catalog,
      statementType,
      state: 'QUEUED',
      submitted: new Date(),
      outputLocation: `${this.outputLocation(wg)}${id}.${statementType === 'DML' ? 'csv' : 'txt'}`,
      ...(token ? { token } : {}),
    };
    this.queries.set(id, q);
    if (token) this.byToken.set(token, id);
    q.run = this.run(q, wg).catch((err: unknown) => this.finish(q, 'FAILED', { category: 1, type: 100, retryable: true, message: `INTERNAL_ERROR: ${(err as Error).message}` }));
    return { QueryExecutionId: id };
  }

  private finish(q: QueryRecord, state: State, error?: QueryRecord['error'], reason?: string): void {
    if (q.state === 'SUCCEEDED' || q.state === 'FAILED' || q.state === 'CANCELLED') return;
    q.state = state;
    q.completed = new Date();
    if (error) {
      q.error = error;
      q.reason = error.message;
    } else if (reason) q.reason = reason;
    this.opts.log?.(`athena ${q.id} ${state}${q.reason ? `: ${q.reason}` : ''}`);
  }

  private async run(q: QueryRecord, wg: AthenaWorkgroupConfig): Promise<void> {
    const { statements, translation, sessionProperties } = translateAthenaStatement(q.sql, {
      database: q.database,
      ...(this.opts.vacuumMaxSnapshotAgeSeconds !== undefined ? { vacuumMaxSnapshotAgeSeconds: this.opts.vacuumMaxSnapshotAgeSeconds } : {}),
    });
    if (translation) this.opts.log?.(`athena ${q.id}: ${translation} → ${statements.join('; ')}`);
    let scanned = 0;
    for (const sql of statements) {
      if (q.state === 'CANCELLED') return;
      let before = 0;
      const execute = (): Promise<TrinoResult> => this.opts.trino.execute(sql, {
        catalog: q.catalog,
        schema: q.database,
        ...(sessionProperties ? { properties: sessionProperties } : {}),
        onQueryId: (trinoId) => {
          q.trinoQueryId = trinoId;
          // Stopped while queued: cancel as soon as Trino has the query.
          if (q.state === 'CANCELLED') void this.opts.trino.cancel(trinoId);
        },
        onProgress: (stats) => {
          q.stats = { ...stats, physicalInputBytes: scanned + (stats.physicalInputBytes ?? 0) };
          before = stats.physicalInputBytes ?? 0;
          if (q.state === 'QUEUED' && stats.state !== 'QUEUED') q.state = 'RUNNING';
          const cutoff = wg.bytesScannedCutoffPerQuery;
          if (cutoff !== undefined && scanned + before > cutoff && q.state === 'RUNNING') {
            this.finish(q, 'CANCELLED', undefined, 'Query cancelled! Bytes scanned limit was exceeded');
            void this.opts.trino.cancel(q.trinoQueryId!);
          }
        },
      });
      let result = await execute();
      // Right after Trino starts, a catalog's nodes are registered a moment after the server
      // answers queries: a statement is then refused at scheduling, before it ran anything, with
      // NO_NODES_AVAILABLE (seen ~1 s after start-up on two cores). Athena has no such start-up;
      // the refused statement is sent again, for at most NO_NODES_RETRY_MS.
      for (const until = Date.now() + NO_NODES_RETRY_MS; result.error?.errorName === 'NO_NODES_AVAILABLE' && Date.now() < until && (q.state as State) !== 'CANCELLED'; ) {
        await new Promise((r) => setTimeout(r, 250));
        result = await execute();
      }
      scanned += before;
      // Stopped (or over the cutoff) meanwhile: state is mutated by the callbacks above.
      if ((q.state as State) === 'CANCELLED') return;
      if (result.error) return this.finish(q, 'FAILED', athenaError(result.error));
      q.result = result;
    }
    await this.writeOutput(q, wg);
    this.finish(q, 'SUCCEEDED');
  }

  /** Athena writes a SELECT's rows as CSV (header, every field quoted, NULL empty), DDL output as text. */
  private async writeOutput(q: QueryRecord, wg: AthenaWorkgroupConfig): Promise<void> {
    const r = q.result;
    if (!r) return;
    await mkdir(wg.outputDir, { recursive: true });
    const file = path.join(wg.outputDir, path.basename(q.outputLocation));
    if (q.statementType === 'DML') {
      if (r.updateType) return;
      const lines = [r.columns.map((c) => csvField(c.name)).join(',')];
      for (const row of r.rows) lines.push(row.map((v, i) => csvField(athenaValue(v, r.columns[i]?.typeSignature))).join(','));
      await writeFile(file, `${lines.join('\n')}\n`);
    } else {
      await writeFile(file, r.rows.map((row) => row.map((v, i) => athenaValue(v, r.columns[i]?.typeSignature) ?? '').join('\t')).join('\n') + (r.rows.length ? '\n' : ''));
    }
  }

  private describe(q: QueryRecord): Record<string, unknown> {
    const s = q.stats;
    const end = q.completed ?? new Date();
    return {
      QueryExecutionId: q.id,
      Query: q.sql,
      StatementType: q.statementType,
      ResultConfiguration: { OutputLocation: q.outputLocation },
      ResultReuseConfiguration: { ResultReuseByAgeConfiguration: { Enabled: false } },
      QueryExecutionContext: { Database: q.database, Catalog: 'AwsDataCatalog' },
      Status: {
        State: q.state,
        ...(q.reason ? { StateChangeReason: q.reason } : {}),
        SubmissionDateTime: q.submitted.getTime() / 1000,
        ...(q.completed ? { CompletionDateTime: q.completed.getTime() / 1000 } : {}),
        ...(q.error
          ? { AthenaError: { ErrorCategory: q.error.category, ErrorType: q.error.type, Retryable: q.error.retryable, ErrorMessage: q.error.message } }
          : {}),
      },
      Statistics: {
        EngineExecutionTimeInMillis: Math.max(0, (s?.elapsedTimeMillis ?? 0) - (s?.queuedTimeMillis ?? 0)),
        DataScannedInBytes: s?.physicalInputBytes ?? 0,
        TotalExecutionTimeInMillis: end.getTime() - q.submitted.getTime(),
        QueryQueueTimeInMillis: s?.queuedTimeMillis ?? 0,
        ServicePreProcessingTimeInMillis: 0,
        QueryPlanningTimeInMillis: 0,
        ServiceProcessingTimeInMillis: 0,
        ResultReuseInformation: { ReusedPreviousResult: false },
      },
      WorkGroup: q.workgroup,
      EngineVersion: { SelectedEngineVersion: ATHENA_ENGINE_VERSION, EffectiveEngineVersion: ATHENA_ENGINE_VERSION },
    };
  }

  private results(body: Record<string, unknown>): Record<string, unknown> {
    const q = this.query(body.QueryExecutionId);
    if (q.state === 'FAILED') throw invalid(q.reason ?? 'Query failed');
    if (q.state === 'CANCELLED') throw invalid(`Query did not finish successfully. Final query state: CANCELLED${q.reason ? ` (${q.reason})` : ''}`);
    if (q.state !== 'SUCCEEDED') throw invalid(`Query has not yet finished. Current state: ${q.state}`);
    const max = body.MaxResults === undefined ? 1000 : Number(body.MaxResults);
    if (!Number.isInteger(max) || max < 1 || max > 1000) {
      throw invalid(`1 validation error detected: Value '${String(body.MaxResults)}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000`);
    }
    let offset = 0;
    if (body.NextToken !== undefined) {
      const m = /^([0-9a-f-]{36}):(\d+)$/.exec(Buffer.from(String(body.NextToken), 'base64url').toString('utf8'));
      if (!m || m[1] !== q.id) throw invalid('The NextToken is not valid for this query.');
      offset = Number(m[2]);
    }
    const r = q.result!;
    // An UPDATE count (INSERT, CTAS, MERGE, ...) has no rows: Athena reports UpdateCount only.
    const columns = r.updateType ? [] : r.columns;
    const header = q.statementType === 'DML' && !r.updateType;
    const total = (header ? 1 : 0) + (r.updateType ? 0 : r.rows.length);
    const rows: { Data: { VarCharValue?: string }[] }[] = [];
    for (let i = offset; i < Math.min(total, offset + max); i += 1) {
      if (header && i === 0) rows.push({ Data: columns.map((c) => ({ VarCharValue: c.name })) });
      else {
        const row = r.rows[i - (header ? 1 : 0)]!;
        rows.push({ Data: row.map((v, k) => {
          const text = athenaValue(v, columns[k]?.typeSignature);
          return text === undefined ? {} : { VarCharValue: text };
        }) });
      }
    }
    const next = offset + max < total ? Buffer.from(`${q.id}:${offset + max}`).toString('base64url') : undefined;
    return {
      UpdateCount: r.updateCount ?? 0,
      ResultSet: { Rows: rows, ResultSetMetadata: { ColumnInfo: columns.map(columnInfo) } },
      ...(next ? { NextToken: next } : {}),
    };
  }

  private async stop(q: QueryRecord): Promise<void> {
    if (q.state !== 'QUEUED' && q.state !== 'RUNNING') return;
    this.finish(q, 'CANCELLED');
    if (q.trinoQueryId) await this.opts.trino.cancel(q.trinoQueryId);
  }

  /** Cancel what still runs and wait for the background runs to end. */
  async shutdown(): Promise<void> {
    const running = [...this.queries.values()].filter((q) => q.state === 'QUEUED' || q.state === 'RUNNING');
    await Promise.all(running.map((q) => this.stop(q)));
    await Promise.all(running.map((q) => q.run));
  }
}

export async function startAthenaServer(opts: AthenaServerOptions): Promise<AthenaServer> {
  const athena = new LocalAthena(opts);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'POST') throw new ApiError('UnknownOperationException', `${req.method} is not supported; the Athena API is POST /.`);
      const target = String(req.headers['x-amz-target'] ?? '');
      const request = await readJsonRequest(req, MAX_HTTP_BODY_BYTES);
      if ('tooLarge' in request) throw invalid(`The request body is over ${MAX_HTTP_BODY_BYTES} bytes.`);
      if ('notJson' in request) throw new ApiError('SerializationException', request.notJson);
      const [service, op = ''] = target.split('.');
      if (service !== 'AmazonAthena') throw new ApiError('UnknownOperationException', `Unknown X-Amz-Target ${target || '(none)'}.`);
      sendAwsJson(res, 200, await athena.dispatch(op, request.body));
    } catch (err) {
      if (err instanceof ApiError) {
        sendAwsJson(res, err.status, { __type: err.type, Message: err.message, ...(err.athenaErrorCode ? { AthenaErrorCode: err.athenaErrorCode } : {}) }, err.type);
      } else sendAwsJson(res, 500, { __type: 'InternalServerException', Message: (err as Error).message }, 'InternalServerException');
    }
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close() {
      closed ??= (async () => {
        await athena.shutdown();
        server.closeIdleConnections();
        await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      })();
      return closed;
    },
  };
}
