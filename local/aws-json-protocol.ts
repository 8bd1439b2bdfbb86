/**
 * The AWS JSON 1.1 protocol's plumbing shared by the local endpoints (Firehose, Athena): the
 * answer with AWS's headers, and a request's JSON object read up to a size limit.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An AWS JSON 1.1 answer; errors carry their type in `x-amzn-errortype` as AWS sends it. */
export function sendAwsJson(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

/** A request's JSON object, or what is wrong with it (each endpoint answers in its own error shape). */
export type JsonRequest = { body: Record<string, unknown> } | { tooLarge: number } | { notJson: string };

/**
 * The request body parsed as a JSON object (empty: `{}`). An oversize body is still read to its
 * end (not kept), so the client reads the error answer instead of a reset connection.
 */
export async function readJsonRequest(req: IncomingMessage, maxBytes: number): Promise<JsonRequest> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) parts.push(chunk);
  }
  if (size > maxBytes) return { tooLarge: size };
  const text = Buffer.concat(parts).toString('utf8');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    return { notJson: 'The request body is not valid JSON.' };
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { notJson: 'The request body must be a JSON object.' };
  return { body: body as Record<string, unknown> };
}
