/**
 * A minimal object store over S3 or a local directory, with S3's conditional-write semantics
 * (If-Match / If-None-Match) on both, so checkpoints, quarantine files, run summaries and reports
 * are written by the same code in AWS and in the local pipeline.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { boundedRequestHandler, S3_REQUEST_TIMEOUT_MS } from './aws-request-handler';
import { StateError } from './pipeline-error';

export interface StoredObject {
  body: Buffer;
  /** Opaque version tag; pass it back as `ifMatch` for a compare-and-swap write. */
  etag: string;
}

export interface PutOptions {
  /** Write only if the current object has this etag. */
  ifMatch?: string;
  /** `'*'`: write only if no object exists under the key. */
  ifNoneMatch?: '*';
  contentType?: string;
  contentEncoding?: string;
}

/** A conditional write lost: someone else wrote the object first. */
export class PreconditionFailedError extends StateError {
  override name = 'PreconditionFailedError';
}

export interface ObjectStore {
  /** Where objects go, for messages: `s3://bucket` or a directory path. */
  readonly location: string;
  get(key: string): Promise<StoredObject | undefined>;
  put(key: string, body: Buffer | string, options?: PutOptions): Promise<{ etag: string }>;
  /** Every key under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
}

function assertKey(key: string): void {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '..' || p === '.')) {
    throw new Error(`Invalid object key "${key}": keys are relative paths without "." or ".." segments`);
  }
}

const etagOf = (body: Buffer): string => `"${createHash('md5').update(body).digest('hex')}"`;

/** Objects as files under a root directory; keys map to relative paths. */
export class LocalObjectStore implements ObjectStore {
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = path.resolve(root);
  }

  private file(key: string): string {
    assertKey(key);
    return path.join(this.location, key);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const body = await readFile(this.file(key));
      return { body, etag: etagOf(body) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}): Promise<{ etag: string }> {
    const target = this.file(key);
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    await mkdir(path.dirname(target), { recursive: true });
    const conditional = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
    const release = conditional ? await this.lock(target) : undefined;
    try {
      if (conditional) {
        const current = await this.get(key);
        if (options.ifNoneMatch === '*' && current) {
          throw new PreconditionFailedError(`${target} already exists (If-None-Match: *)`);
        }
        if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) {
          throw new PreconditionFailedError(`${target} changed since it was read (If-Match ${options.ifMatch})`);
        }
      }
      // Write then rename, so a reader never sees half an object.
      const tmp = `${target}.${randomUUID()}.tmp`;
      await writeFile(tmp, data);
      await rename(tmp, target);
      return { etag: etagOf(data) };
    } finally {
      await release?.();
    }
  }

  /** An exclusive lock file beside the target, so compare-and-swap is atomic across processes. */
  private async lock(target: string): Promise<() => Promise<void>> {
    const lockFile = `${target}.lock`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const handle = await open(lockFile, 'wx');
        await handle.close();
        return () => rm(lockFile, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // A lock this old was left by a crashed process.
        const age = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > 30_000) await rm(lockFile, { force: true });
        if (Date.now() > deadline) throw new Error(`Timed out waiting for lock ${lockFile}`, { cause: err });
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (!e.name.endsWith('.tmp') && !e.name.endsWith('.lock')) {
          const key = path.relative(this.location, full).split(path.sep).join('/');
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    };
    // Start at the deepest directory the prefix names, then filter by the full prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(path.join(this.location, dirPart));
    return keys.sort();
  }
}

/** Objects in one S3 bucket. */
export class S3ObjectStore implements ObjectStore {
  readonly location: string;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {
    this.location = `s3://${bucket}`;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    assertKey(key);
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = await res.Body!.transformToByteArray();
      return { body: Buffer.from(bytes), etag: res.ETag ?? '' };
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)) {
        return undefined;
      }
      throw err;
    }
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}): Promise<{ etag: string }> {
    assertKey(key);
    try {
      const res = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          IfMatch: options.ifMatch,
          IfNoneMatch: options.ifNoneMatch,
          ContentType: options.contentType,
          ContentEncoding: options.contentEncoding,
        }),
      );
      return { etag: res.ETag ?? '' };
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      // 412: the condition failed; 409: a concurrent conditional write to the same key won.
      if (status === 412 || status === 409) {
        throw new PreconditionFailedError(`s3://${this.bucket}/${key}: conditional write rejected (${(err as Error).name})`);
      }
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}

/**
 * Open a store from a location string: `s3://bucket` (the S3 client honours
 * AWS_ENDPOINT_URL_S3) or a local directory path.
 */
export function openObjectStore(location: string, s3: () => S3Client = () => new S3Client({ requestHandler: boundedRequestHandler(S3_REQUEST_TIMEOUT_MS) })): ObjectStore {
  const m = /^s3:\/\/([^/]+)\/?$/.exec(location);
  if (m) return new S3ObjectStore(s3(), m[1]!);
  if (location.startsWith('s3://')) {
    throw new Error(`Object store location "${location}" must be a bare bucket (s3://bucket); put prefixes in keys`);
  }
  return new LocalObjectStore(location);
}
