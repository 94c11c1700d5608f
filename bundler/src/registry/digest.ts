import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors.ts';

const SUPPORTED: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Whether this client can verify the digest (`sha256:…` or `sha512:…`, lowercase hex). */
export function isSupportedDigest(digest: string): boolean {
  const [algorithm = '', hex = '', extra] = digest.split(':');
  return extra === undefined && SUPPORTED[algorithm]?.test(hex) === true;
}

export function assertDigest(digest: string): void {
  if (!isSupportedDigest(digest)) {
    throw new TypeError(
      `"${digest}" is not a digest this client can verify (expected sha256:<64 hex> or sha512:<128 hex>)`,
    );
  }
}

/** A running hash for the algorithm named in `digest`. */
export function hasherFor(digest: string): { hash: Hash; algorithm: string } {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return { hash: createHash(algorithm), algorithm };
}

export function digestOf(bytes: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export interface VerifyOptions {
  digest: string;
  /** Content-Length the server announced, or the size the manifest promised. */
  expectedLength?: number;
  /** Longest wait for the next chunk before the stream fails. */
  idleTimeoutMs: number;
  /** Describes the content for messages, e.g. `blob sha256:… of foo/bar from host`. */
  describe: string;
  /** Turns a network failure mid-body into the error the stream ends with. */
  onNetworkError: (error: unknown) => Error;
}

/**
 * Passes a body through while hashing it; ends with an error instead of closing when the bytes
 * do not hash to the digest or their count differs from the expected length, so a consumer that
 * stores the stream (S3, disk) sees the failure before it commits.
 */
export function verifyingStream(
  body: ReadableStream<Uint8Array>,
  options: VerifyOptions,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const { hash, algorithm } = hasherFor(options.digest);
  let received = 0;
  const mismatch = (message: string) =>
    new RegistryError('digest-mismatch', `The ${options.describe} ${message}`);

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await readWithin(reader, options.idleTimeoutMs);
      } catch (error) {
        controller.error(options.onNetworkError(error));
        return;
      }
      if (result.done) {
        if (options.expectedLength !== undefined && received !== options.expectedLength) {
          controller.error(mismatch(`ended after ${received} bytes instead of ${options.expectedLength}`));
          return;
        }
        const actual = `${algorithm}:${hash.digest('hex')}`;
        if (actual !== options.digest) {
          controller.error(mismatch(`does not match its digest: its bytes hash to ${actual}`));
          return;
        }
        controller.close();
        return;
      }
      received += result.value.byteLength;
      if (options.expectedLength !== undefined && received > options.expectedLength) {
        void reader.cancel().catch(() => {});
        controller.error(mismatch(`is longer than the ${options.expectedLength} bytes announced`));
        return;
      }
      hash.update(result.value);
      controller.enqueue(result.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

export class IdleTimeoutError extends Error {
  override name = 'IdleTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no data for ${timeoutMs} ms`);
  }
}

/** `reader.read()` that gives up (and cancels the body) when nothing arrives in time. */
export async function readWithin<T>(
  reader: ReadableStreamDefaultReader<T>,
  timeoutMs: number,
): Promise<ReadableStreamReadResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new IdleTimeoutError(timeoutMs));
      void reader.cancel().catch(() => {});
    }, timeoutMs);
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
