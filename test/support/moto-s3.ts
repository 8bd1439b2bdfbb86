/**
 * A real S3-protocol server for tests: moto_server (local/moto-server.ts), which enforces
 * conditional writes. Tests that use it skip visibly where it is not installed (CI installs it).
 */
export { motoAvailable, startMotoS3, type MotoS3 } from '../../local/moto-server';
