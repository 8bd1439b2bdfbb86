/**
 * The Trino server a test run shares: `npm test` starts one (local/with-trino.ts) and passes its
 * URL as TRINO_URL. Without it, Trino-backed suites skip visibly on a developer's machine and fail
 * in CI (CI=true), where .ci/run installs Trino: a missing Trino never passes silently there.
 */
import { randomUUID } from 'node:crypto';
import { INSTALL_HINT } from '../../local/trino-server';

export const trinoUrl = process.env.TRINO_URL;
/** The shared server's file metastore (the raw Glue table is registered there). */
export const trinoMetastoreDir = process.env.TRINO_METASTORE_DIR;

if ((!trinoUrl || !trinoMetastoreDir) && process.env.CI) {
  throw new Error(`TRINO_URL or TRINO_METASTORE_DIR is not set in CI: run the tests through \`npm test\` (local/with-trino.ts starts Trino); ${INSTALL_HINT}`);
}

/** `skip` option of a Trino-backed suite: false when Trino runs, else the reason. */
export const trinoSkip: string | false = trinoUrl && trinoMetastoreDir ? false : `no Trino for this run (TRINO_URL / TRINO_METASTORE_DIR unset): ${INSTALL_HINT}, then npm test`;

/** A database-name suffix of its own for each test, so tests sharing one server never meet. */
export const uniqueSuffix = (): string => randomUUID().replace(/-/g, '').slice(0, 12);
