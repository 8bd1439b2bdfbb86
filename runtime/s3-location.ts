/**
 * `s3://bucket/prefix/` as a bucket and a key prefix: the one definition of an S3 source's URL,
 * which the dataset schema, the fetcher's configuration and the S3 source all use.
 */
import { ConfigError } from './pipeline-error';

export interface S3Location {
  bucket: string;
  /** '' for the whole bucket; otherwise as written (normally ending in `/`). */
  prefix: string;
}

/**
 * Bucket names: 3-63 of lowercase letters, digits, dots and hyphens (S3's naming rules, loosely:
 * a wrong name is refused by S3 itself with its own message); a prefix without whitespace. Its
 * source is the `pattern` of datasets/dataset.schema.json, so it stays exactly this text.
 */
export const S3_URL_PATTERN = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/\S*)?$/;

/**
 * An S3 URL that is not of that form. Its own class (a ConfigError, as DatasetConfigError is)
 * because runtime/dataset-config.ts imports this module: importing DatasetConfigError here would
 * be an import cycle.
 */
export class S3LocationError extends ConfigError {
  override name = 'S3LocationError';
}

export function parseS3Url(url: string): S3Location {
  if (!S3_URL_PATTERN.test(url)) {
    throw new S3LocationError(`S3 source ${JSON.stringify(url)} is not of the form s3://bucket/prefix/ (a bucket name of 3-63 lowercase letters, digits, dots or hyphens)`);
  }
  const path = url.slice('s3://'.length);
  const slash = path.indexOf('/');
  return slash < 0 ? { bucket: path, prefix: '' } : { bucket: path.slice(0, slash), prefix: path.slice(slash + 1) };
}
