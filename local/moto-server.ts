/**
 * moto_server (Python, `pip install "moto[server]"`): an independent implementation of the S3 wire
 * protocol, the local stand-in for S3 where a source reads from a bucket (`npm run local` of an S3
 * dataset) and in tests. In memory: what it holds is gone when it stops.
 */
import { spawn, spawnSync } from 'node:child_process';
import { freePort } from './free-port';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../runtime/pipeline-error';

export const motoAvailable = spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;

export class MotoMissingError extends ConfigError {
  override name = 'MotoMissingError';
}


export interface MotoS3 {
  /** Path-style (moto serves buckets under the path, not as host names). */
  s3: S3Client;
  endpoint: string;
  pid: number | undefined;
  stop(): void;
}

/** Starts moto_server on a free port and waits until it creates `bucket` (at most 20 s). */
export async function startMotoS3(bucket: string): Promise<MotoS3> {
  if (!motoAvailable) throw new MotoMissingError('moto_server is not installed: S3 sources run locally against it (pip install "moto[server]")');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return { s3, endpoint, pid: moto.pid, stop: () => moto.kill('SIGTERM') };
    } catch (err) {
      if (Date.now() > deadline) {
        moto.kill('SIGTERM');
        throw new Error(`moto_server did not start on port ${port}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
