/** The local Socrata server as the source identity a deployed fetcher would record: its host and dataset id. */
import type { SocrataServer } from '../../local/socrata-server';

export const serverIdentity = (server: Pick<SocrataServer, 'url' | 'datasetId'>): { domain: string; datasetId: string } => ({
  domain: new URL(server.url).host,
  datasetId: server.datasetId,
});
