/**
 * The local Socrata server's SODA 3 route: `POST /api/v3/views/<id>/query.json` with a JSON body
 * (`query`, `page`, `includeSystem`, ...) or `GET` with `query`/`pageNumber`/`pageSize`. The SoQL
 * string is split into its clauses and served by the SODA 2 path's evaluator, so both APIs answer
 * a query with the same rows. What is documented, observed or a stand-in here is in
 * docs/soda3-facts.md.
 */
import type http from 'node:http';
import { SoqlError } from './soql';
import type { RequestRecord } from './socrata-requests';
import { RequestRefusedError } from '../runtime/pipeline-error';

/** SODA 2 query parameters (`$select`, `$where`, `$order`, `$limit`, `$offset`). */
export type Soda2Params = Record<string, string>;

export interface Soda3Host {
  datasetId: string;
  sendJson(res: http.ServerResponse, status: number, body: unknown): void;
  /**
   * Serves SODA 2 parameters as `/resource/<id>.json` does (request counting, injected faults,
   * streaming), rendering a query error with `errorBody`.
   */
  serve(res: http.ServerResponse, params: Soda2Params, record: RequestRecord, errorBody: (err: SoqlError) => unknown): void;
}

/** The options of a SODA 3 query request, from a POST body or GET parameters. */
export interface Soda3Request {
  query: string;
  page?: { pageNumber: number; pageSize: number };
  includeSystem?: boolean;
  includeSynthetic?: boolean;
}

/** A request the route refuses before any SoQL is read: a 4xx in the query layer's shape. */
class RequestError extends RequestRefusedError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const BODY_FIELDS = new Set(['query', 'page', 'parameters', 'timeout', 'includeSystem', 'includeSynthetic', 'orderingSpecifier']);
const GET_PARAMS = new Set(['query', 'pageNumber', 'pageSize']);
const MAX_BODY_BYTES = 1024 * 1024;

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** Checks a parsed POST body against the documented request options. */
export function soda3RequestFromBody(body: unknown): Soda3Request {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestError(400, 'req.content.json.not-object', `The request body must be a JSON object, not ${JSON.stringify(body)}`);
  }
  const b = body as Record<string, unknown>;
  const bad = (parameter: string, why: string): never => {
    throw new RequestError(400, 'req.bad-parameter', `Request has bad parameter '${parameter}': ${why}`, { parameter, value: b[parameter] });
  };
  for (const k of Object.keys(b)) if (!BODY_FIELDS.has(k)) bad(k, `not a SODA 3 query option (${[...BODY_FIELDS].join(', ')})`);
  if (typeof b.query !== 'string') bad('query', 'the SoQL query string is required');
  const request: Soda3Request = { query: b.query as string };
  if (b.page !== undefined) {
    const p = b.page as Record<string, unknown>;
    const keys = typeof p === 'object' && p !== null ? Object.keys(p).sort().join(',') : '';
    if (keys !== 'pageNumber,pageSize' || !isPositiveInt(p.pageNumber) || !isPositiveInt(p.pageSize)) {
      bad('page', 'must be {"pageNumber": n, "pageSize": m}, both integers of at least 1');
    }
    request.page = { pageNumber: p.pageNumber as number, pageSize: p.pageSize as number };
  }
  for (const k of ['includeSystem', 'includeSynthetic'] as const) {
    if (b[k] === undefined) continue;
    if (typeof b[k] !== 'boolean') bad(k, 'must be true or false');
    request[k] = b[k] as boolean;
  }
  if (b.timeout !== undefined && !(typeof b.timeout === 'number' && b.timeout > 0)) bad('timeout', 'must be a positive number of seconds');
  if (b.orderingSpecifier !== undefined && b.orderingSpecifier !== 'total' && b.orderingSpecifier !== 'discard') {
    bad('orderingSpecifier', 'must be "total" or "discard"');
  }
  // This server has no parameterized views: a parameter would be silently ignored.
  if (b.parameters !== undefined && (typeof b.parameters !== 'object' || b.parameters === null || Object.keys(b.parameters).length)) {
    bad('parameters', 'this local server has no views that take parameters');
  }
  return request;
}

/** GET carries `query`, `pageNumber` and `pageSize` as URL parameters (observed; nothing else is). */
export function soda3RequestFromUrl(params: URLSearchParams): Soda3Request {
  for (const k of params.keys()) {
    if (!GET_PARAMS.has(k)) {
      throw new RequestError(400, 'req.bad-parameter', `Request has bad parameter '${k}': a GET takes only ${[...GET_PARAMS].join(', ')}`, { parameter: k });
    }
  }
  const query = params.get('query');
  if (query === null) throw new RequestError(400, 'req.bad-parameter', "Request has bad parameter 'query': the SoQL query string is required", { parameter: 'query' });
  const request: Soda3Request = { query };
  const number = params.get('pageNumber');
  const size = params.get('pageSize');
  if (number !== null || size !== null) {
    const n = Number(number);
    const s = Number(size);
    if (!/^\d+$/.test(number ?? '') || !/^\d+$/.test(size ?? '') || !isPositiveInt(n) || !isPositiveInt(s)) {
      throw new RequestError(400, 'req.bad-parameter', 'pageNumber and pageSize go together, both integers of at least 1', { pageNumber: number, pageSize: size });
    }
    request.page = { pageNumber: n, pageSize: s };
  }
  return request;
}

type ClauseName = 'SELECT' | 'WHERE' | 'GROUP BY' | 'HAVING' | 'ORDER BY' | 'LIMIT' | 'OFFSET' | 'SEARCH';
const CLAUSE_ORDER: ClauseName[] = ['SELECT', 'WHERE', 'GROUP BY', 'HAVING', 'ORDER BY', 'LIMIT', 'OFFSET'];
const UNSUPPORTED = new Set<ClauseName>(['GROUP BY', 'HAVING', 'SEARCH']);
const CLAUSE_START = /^(select|where|group\s+by|having|order\s+by|limit|offset|search)(?![A-Za-z0-9_])/i;

/**
 * The clauses of a SoQL query string, by name: keywords count only outside string literals,
 * backticked identifiers and parentheses, at the start of a word.
 */
export function splitSoql(query: string): Partial<Record<ClauseName, string>> {
  const found: { name: ClauseName; start: number; body: number }[] = [];
  let depth = 0;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (c === "'" || c === '`') {
      // Skip the literal. An escaped quote ('') ends it and starts another: the same text is skipped.
      const end = query.indexOf(c, i + 1);
      if (end < 0) throw new SoqlError(`Unterminated ${c === "'" ? 'string literal' : 'quoted identifier'} at position ${i} in "${query}"`);
      i = end;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
    } else if (c === '|' && query[i + 1] === '>') {
      throw new SoqlError(`Query pipes (|>) are not supported by the local Socrata server: "${query}"`, 'query.soql.unsupported');
    } else if (depth === 0 && /[A-Za-z]/.test(c) && (i === 0 || /[\s)]/.test(query[i - 1]!))) {
      const m = CLAUSE_START.exec(query.slice(i));
      if (m) {
        found.push({ name: m[1]!.toUpperCase().replace(/\s+/, ' ') as ClauseName, start: i, body: i + m[0].length });
        i += m[0].length - 1;
      } else {
        // Skip the rest of the word: a keyword only starts a word.
        while (i + 1 < query.length && /[A-Za-z0-9_]/.test(query[i + 1]!)) i++;
      }
    }
  }
  if (!query.trim()) throw new SoqlError('The query is empty; it needs at least "SELECT *"');
  const lead = query.slice(0, found[0]?.start ?? query.length).trim();
  if (lead) throw new SoqlError(`Expected a clause (${CLAUSE_ORDER.join(', ')}) at the start of "${query}", not "${lead}"`);
  const clauses: Partial<Record<ClauseName, string>> = {};
  let last = -1;
  found.forEach((f, k) => {
    if (UNSUPPORTED.has(f.name)) throw new SoqlError(`${f.name} is not supported by the local Socrata server: "${query}"`, 'query.soql.unsupported');
    const rank = CLAUSE_ORDER.indexOf(f.name);
    if (rank <= last) throw new SoqlError(`${f.name} is repeated or out of order (clauses go ${CLAUSE_ORDER.join(', ')}) in "${query}"`);
    last = rank;
    const body = query.slice(f.body, found[k + 1]?.start ?? query.length).trim();
    if (!body) throw new SoqlError(`${f.name} has nothing after it in "${query}"`);
    clauses[f.name] = body;
  });
  return clauses;
}

function nonNegativeInt(clause: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new SoqlError(`${clause} takes a non-negative integer, not "${text}"`);
  return Number(text);
}

/**
 * The SODA 2 parameters answering a SODA 3 request: `page` slices what the query's LIMIT/OFFSET
 * select; `SELECT *` carries the system fields unless `includeSystem` or `includeSynthetic` is
 * false; no page and no LIMIT means every row.
 */
export function soda2ParamsFor(request: Soda3Request): Soda2Params {
  const c = splitSoql(request.query);
  const params: Soda2Params = {};
  const select = c.SELECT ?? '*';
  params.$select = select === '*' && request.includeSystem !== false && request.includeSynthetic !== false ? ':*,*' : select;
  if (c.WHERE !== undefined) params.$where = c.WHERE;
  if (c['ORDER BY'] !== undefined) params.$order = c['ORDER BY'];
  const limit = nonNegativeInt('LIMIT', c.LIMIT);
  const offset = nonNegativeInt('OFFSET', c.OFFSET) ?? 0;
  if (request.page) {
    const start = offset + (request.page.pageNumber - 1) * request.page.pageSize;
    const end = limit === undefined ? Number.MAX_SAFE_INTEGER : offset + limit;
    params.$offset = String(start);
    params.$limit = String(Math.max(0, Math.min(request.page.pageSize, end - start)));
  } else {
    params.$offset = String(offset);
    params.$limit = String(limit ?? Number.MAX_SAFE_INTEGER);
  }
  return params;
}

/** A query error as the query layer reports it (docs/soda3-facts.md, Errors). */
export function soda3QueryErrorBody(err: SoqlError, query: string): { message: string; errorCode: string; data: { query: string } } {
  return { message: `Query coordinator error: ${err.code}; ${err.message}`, errorCode: err.code, data: { query } };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        reject(new RequestError(413, 'req.body.too-large', `The request body is too large; the limit is ${MAX_BODY_BYTES} bytes`, { limit: MAX_BODY_BYTES }));
      } else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

async function readRequest(req: http.IncomingMessage, url: URL): Promise<Soda3Request> {
  if (req.method === 'GET') return soda3RequestFromUrl(url.searchParams);
  const type = req.headers['content-type'];
  if (!type) throw new RequestError(400, 'req.content-type.missing', 'No content-type is set on the request (send Content-Type: application/json)');
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new RequestError(415, 'req.content-type.not-json', `The content-type set on the request (${type}) should instead be of type 'application/json'`, { 'content-type': type });
  }
  const text = (await readBody(req)).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new RequestError(400, 'req.body.malformed-json', `The json request body is malformed: ${(err as Error).message}`);
  }
  return soda3RequestFromBody(body);
}

/** The handler for `/api/v3/...` paths; `record` is the request's entry in the server's log. */
export function soda3Route(host: Soda3Host): (req: http.IncomingMessage, res: http.ServerResponse, url: URL, record: RequestRecord) => void {
  const queryPath = `/api/v3/views/${host.datasetId}/query.json`;
  const refuse = (res: http.ServerResponse, record: RequestRecord, status: number, body: unknown): void => {
    record.status = status;
    host.sendJson(res, status, body);
  };
  return (req, res, url, record) => {
    if (url.pathname !== queryPath) {
      return refuse(res, record, 404, { message: `Path not found: ${url.pathname}; this server serves ${queryPath}`, errorCode: 'not-found', data: { path: url.pathname } });
    }
    if (req.method !== 'POST' && req.method !== 'GET') {
      return refuse(res, record, 405, { message: `HTTP method ${req.method} is not allowed for this request`, errorCode: 'method-not-allowed', data: { method: req.method, allowed: ['GET', 'POST'] } });
    }
    // SODA 3 requires a user or an app token; the status and body of the refusal are a stand-in (no recording found).
    if (!record.appToken?.trim()) {
      return refuse(res, record, 403, {
        code: 'permission_denied',
        error: true,
        message: 'SODA 3 query requests must be authenticated or carry an application token (X-App-Token header)',
      });
    }
    const answer = async (): Promise<void> => {
      let request: Soda3Request;
      let params: Soda2Params;
      try {
        request = await readRequest(req, url);
        record.soql = request.query;
        params = soda2ParamsFor(request);
      } catch (err) {
        if (err instanceof RequestError) return refuse(res, record, err.status, { message: err.message, errorCode: err.errorCode, data: err.data });
        if (err instanceof SoqlError) return refuse(res, record, 400, soda3QueryErrorBody(err, record.soql ?? ''));
        throw err;
      }
      record.params = params;
      host.serve(res, params, record, (err) => soda3QueryErrorBody(err, request.query));
    };
    answer().catch((err: unknown) => {
      record.status = 500;
      if (!res.headersSent) host.sendJson(res, 500, { message: (err as Error).message, errorCode: 'internal-error', data: {} });
      else res.destroy();
    });
  };
}
