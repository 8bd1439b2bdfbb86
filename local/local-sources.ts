/**
 * The one place `npm run local` picks the generated source of a dataset that is not Socrata's
 * (Socrata's is local/dataset-rows.ts startLocalSource, a server of its own API).
 */
import { sourceType } from '../runtime/dataset-config';
import type { LocalSourceEndpoint, LocalSourceRequest, StartLocalSourceEndpoint } from './local-source-endpoint';
import { localFileSource } from './local-file-source';
import { localS3Source } from './local-s3-source';
import { localArcgisSource } from './arcgis-local-source';
import { seedRecords } from './seed-rows';

const LOCAL_SOURCES: Record<string, StartLocalSourceEndpoint> = {
  // The example datasets (examples/datasets/) have generators of their own; others get genericRecords.
  file: localFileSource(seedRecords),
  s3: localS3Source(seedRecords),
  arcgis: localArcgisSource(seedRecords),
};

export function startLocalSourceEndpoint(request: LocalSourceRequest): Promise<LocalSourceEndpoint> {
  const type = sourceType(request.dataset.source);
  const start = LOCAL_SOURCES[type];
  if (!start) throw new Error(`npm run local has no local ${type} source`);
  return start(request);
}
