/**
 * The one place `npm run local` picks the generated source of a dataset that is not Socrata's
 * (Socrata's is local/dataset-rows.ts startLocalSource, a server of its own API).
 */
import { sourceType, type SourceType } from '../runtime/dataset-config';
import type { LocalSourceEndpoint, LocalSourceRequest, StartLocalSourceEndpoint } from './local-source-endpoint';
import { localFileSource } from './local-file-source';
import { localS3Source } from './local-s3-source';
import { localCkanSource } from './ckan-local-source';
import { localArcgisSource } from './arcgis-local-source';
import { seedRecords } from './seed-rows';

// Every source type but Socrata's must have one: a new type fails to compile until it does.
const LOCAL_SOURCES: Record<Exclude<SourceType, 'socrata'>, StartLocalSourceEndpoint> = {
  // The example datasets (examples/datasets/) have generators of their own; others get genericRecords.
  file: localFileSource(seedRecords),
  s3: localS3Source(seedRecords),
  ckan: localCkanSource(seedRecords),
  arcgis: localArcgisSource(seedRecords),
};

export function startLocalSourceEndpoint(request: LocalSourceRequest): Promise<LocalSourceEndpoint> {
  const type = sourceType(request.dataset.source);
  if (type === 'socrata') throw new Error('a Socrata dataset is served by the local Socrata server (startLocalSource)');
  return LOCAL_SOURCES[type](request);
}
