/** The local Socrata server's fault rules and its log of requests, shared by its SODA 2 and SODA 3 routes. */
export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'truncate' }
  | { kind: 'reset' };

/**
 * A fault applied to resource requests by number (1-based, counted since start) or to the next
 * `times` ones; with `whereIncludes`, only to requests whose `$where` contains that text (one
 * parallel range's requests, say, whatever order the ranges' requests arrive in).
 */
export type FaultRule = Fault & { requests?: number[]; times?: number; whereIncludes?: string };

export interface RequestRecord {
  n: number;
  path: string;
  params: Record<string, string>;
  status: number;
  fault?: Fault['kind'];
  appToken?: string;
  /** A SODA 3 request's SoQL query (`params` then holds the SODA 2 parameters it was served as). */
  soql?: string;
  /** Rows in a 200 response of row data (not for count(*)). */
  rows?: number;
}
