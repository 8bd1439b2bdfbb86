/**
 * One S3 URL pattern (runtime/s3-location.ts) for the three places that check an S3 source's
 * URL: the dataset schema, the fetcher's configuration and parseS3Url. Each URL below is accepted
 * by all three or refused by all three, each with its own message; before, the fetcher's
 * configuration took any `s3://<something>` and parseS3Url any prefix, whitespace too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { DatasetConfigError, parseDataset } from '../../runtime/dataset-config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { ConfigError, exitCodeFor } from '../../runtime/pipeline-error';
import { parseS3Url, S3LocationError } from '../../runtime/s3-location';

const definition = (url: string) => ({
  name: 'vehicle-events',
  source: { type: 's3', url, format: 'ndjson', mode: 'snapshot' },
  primaryKey: 'id',
  eventTimeColumn: 'at',
  columns: [
    { name: 'id', type: 'text' },
    { name: 'at', type: 'fixed_timestamp' },
  ],
});
const VALID = 's3://fleet-landing/events/';
const env = fetcherEnvironment({ dataset: parseDataset(definition(VALID), 'inline'), deliveryStreamName: 'stream', stateLocation: 's3://raw', metricsNamespace: 'Test' });

/** What each of the three says of `url`: undefined when it accepts it, else its message. */
function verdicts(url: string): { schema?: string; fetcher?: string; parse?: string } {
  const out: { schema?: string; fetcher?: string; parse?: string } = {};
  try {
    parseDataset(definition(url), 'inline');
  } catch (err) {
    assert.ok(err instanceof DatasetConfigError);
    out.schema = err.message;
  }
  try {
    readFetcherConfig({ ...env, SOURCE_URL: url });
  } catch (err) {
    out.fetcher = (err as Error).message;
  }
  try {
    parseS3Url(url);
  } catch (err) {
    assert.ok(err instanceof S3LocationError);
    out.parse = err.message;
  }
  return out;
}

const ACCEPTED: Array<[string, { bucket: string; prefix: string }]> = [
  [VALID, { bucket: 'fleet-landing', prefix: 'events/' }],
  ['s3://fleet-landing/events/2025/', { bucket: 'fleet-landing', prefix: 'events/2025/' }],
  ['s3://fleet-landing/events', { bucket: 'fleet-landing', prefix: 'events' }],
  ['s3://fleet-landing/', { bucket: 'fleet-landing', prefix: '' }],
  ['s3://fleet-landing', { bucket: 'fleet-landing', prefix: '' }],
  ['s3://a.b-c/x', { bucket: 'a.b-c', prefix: 'x' }],
];
const REFUSED = [
  's3:/fleet-landing/events/',
  'https://fleet-landing/events/',
  's3://',
  's3://ab/events/', // a bucket name of two characters
  's3://Fleet-Landing/events/',
  's3://fleet_landing/events/',
  's3://-fleet/events/',
  's3://fleet-landing/my events/',
  `s3://${'a'.repeat(64)}/events/`,
];

describe('one S3 URL pattern for the schema, the fetcher configuration and parseS3Url', () => {
  test('a well-formed URL is accepted by all three, and parsed into its bucket and prefix', () => {
    for (const [url, location] of ACCEPTED) {
      assert.deepEqual(verdicts(url), {}, url);
      assert.deepEqual(parseS3Url(url), location, url);
    }
  });

  test('a malformed one is refused by all three, each with its message', () => {
    for (const url of REFUSED) {
      const v = verdicts(url);
      assert.match(v.schema ?? '(accepted)', /source\.url: must be s3:\/\/<bucket>\/<prefix>\//, `schema: ${url}`);
      assert.ok((v.fetcher ?? '(accepted)').includes(`SOURCE_URL="${url}" must be an s3://bucket/prefix/ URL`), `fetcher configuration: ${url}: ${v.fetcher ?? '(accepted)'}`);
      assert.equal(v.parse ?? '(accepted)', `S3 source ${JSON.stringify(url)} is not of the form s3://bucket/prefix/ (a bucket name of 3-63 lowercase letters, digits, dots or hyphens)`, `parseS3Url: ${url}`);
    }
  });

  test('parseS3Url\'s error is a configuration error, ending a command as DatasetConfigError did', () => {
    const err = (() => {
      try {
        parseS3Url('s3://Bad/x');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof S3LocationError && err instanceof ConfigError);
    assert.equal(err.name, 'S3LocationError');
    assert.equal(exitCodeFor(err), exitCodeFor(new DatasetConfigError('x')));
  });
});
