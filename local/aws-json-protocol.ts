/**
 * The AWS JSON 1.1 protocol's plumbing shared by the local endpoints (Firehose, Athena): the
 * answer with AWS's headers, and a request body read up to a limit.
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

/**
 * The request body as text, or its size when over `maxBytes`. An oversize body is still read to
 * its end (not kept), so the client reads the error answer instead of a reset connection.
 */
export async function readBodyUpTo(req: IncomingMessage, maxBytes: number): Promise<{ text: string } | { tooLarge: number }> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) parts.push(chunk);
  }
  return size > maxBytes ? { tooLarge: size } : { text: Buffer.concat(parts).toString('utf8') };
}
