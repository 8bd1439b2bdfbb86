/** `s3://bucket/prefix/` as a bucket and a key prefix. */
import { DatasetConfigError } from './dataset-config';

export interface S3Location {
  bucket: string;
  /** '' for the whole bucket; otherwise as written (normally ending in `/`). */
  prefix: string;
}

// Bucket names: 3-63 of lowercase letters, digits, dots and hyphens (S3's naming rules, loosely:
// a wrong name is refused by S3 itself with its own message).
const S3_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

export function parseS3Url(url: string): S3Location {
  const m = S3_URL.exec(url);
  if (!m) throw new DatasetConfigError(`S3 source ${JSON.stringify(url)} is not of the form s3://bucket/prefix/ (a bucket name of 3-63 lowercase letters, digits, dots or hyphens)`);
  return { bucket: m[1]!, prefix: m[2] ?? '' };
}
