/**
 * Which source a checkpoint, range plan or key scan was read from: a position or key set means
 * nothing on another one. `type` names the adapter; the other fields are the adapter's own
 * (Socrata: domain and datasetId; a file: its URL; S3: bucket and prefix). Records written before
 * source types existed lack `type`. In runtime/ because the fetcher writes identities and the
 * transform checks a key scan's against the dataset definition's.
 */
import type { SourceConfig } from './dataset-config';
import { parseS3Url } from './s3-location';

export interface SourceIdentity {
  type?: string;
  [field: string]: string | undefined;
}

/** One line for messages, and the value two identities are compared by. */
export function showSource(s: SourceIdentity): string {
  const { type = 'socrata', ...rest } = s;
  if (type === 'socrata') return `${rest.domain}/${rest.datasetId}`;
  const fields = Object.keys(rest)
    .sort()
    .map((k) => `${k}=${rest[k]}`);
  return `${type}:${fields.join(',')}`;
}

export const sameSource = (a: SourceIdentity, b: SourceIdentity): boolean => showSource(a) === showSource(b);

/** The identity the adapter of a dataset's source reports (sources/registry.ts opens that adapter). */
export function sourceIdentity(source: SourceConfig): SourceIdentity {
  if (source.type === 'file') return { type: 'file', url: source.url };
  if (source.type === 'ckan') return { type: 'ckan', url: source.url };
  if (source.type === 'arcgis') return { type: 'arcgis', url: source.url };
  if (source.type === 's3') {
    const { bucket, prefix } = parseS3Url(source.url);
    return { type: 's3', bucket, prefix };
  }
  return { type: 'socrata', domain: source.domain, datasetId: source.datasetId };
}
