import { S3Client, HeadBucketCommand, CreateBucketCommand } from '@aws-sdk/client-s3';

export interface ObjectStoreConfig {
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
  /** The endpoint people's download managers reach, for presigned links (default: `endpoint`). */
  publicEndpoint?: string;
  /**
   * A connection to the store that stays silent this long (no byte either way) is given up with a
   * TimeoutError, so a build or download never hangs on a stalled connection (default 5 minutes:
   * a download to a slow site holds its store read paused while the site catches up).
   */
  idleTimeoutMs?: number;
  /** Giving up on connecting to the store (default 10 s). */
  connectTimeoutMs?: number;
}

const STORE_IDLE_TIMEOUT_MS = 5 * 60_000;

export interface ObjectStore {
  client: S3Client;
  bucket: string;
  /** Signs presigned links with the public endpoint, when it differs from the one the server uses. */
  presignClient?: S3Client;
  /** Throws when the bucket cannot be reached. */
  ping(): Promise<void>;
  ensureBucket(): Promise<void>;
}

/** Every object store (AWS S3, R2, MinIO, the embedded server) is reached through the S3 API. */
export function createObjectStore(cfg: ObjectStoreConfig): ObjectStore {
  const client = s3Client(cfg, cfg.endpoint);
  return {
    client,
    bucket: cfg.bucket,
    ...(cfg.publicEndpoint && cfg.publicEndpoint !== cfg.endpoint
      ? { presignClient: s3Client(cfg, cfg.publicEndpoint) }
      : {}),
    ping: async () => {
      await client.send(new HeadBucketCommand({ Bucket: cfg.bucket }));
    },
    ensureBucket: async () => {
      try {
        await client.send(new HeadBucketCommand({ Bucket: cfg.bucket }));
      } catch {
        await client.send(new CreateBucketCommand({ Bucket: cfg.bucket }));
      }
    },
  };
}

function s3Client(cfg: ObjectStoreConfig, endpoint: string | undefined): S3Client {
  return new S3Client({
    endpoint,
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle ?? Boolean(endpoint),
    credentials:
      cfg.accessKeyId && cfg.secretAccessKey
        ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey }
        : undefined,
    // Checksums only when the API demands them: the default mode corrupts streamed bodies on some
    // S3-compatible servers, and the bundler verifies its own digests anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Node: an idle socket is destroyed (socketTimeout); Workers' fetch handler ignores these.
    requestHandler: {
      connectionTimeout: cfg.connectTimeoutMs ?? 10_000,
      socketTimeout: cfg.idleTimeoutMs ?? STORE_IDLE_TIMEOUT_MS,
    },
  });
}
