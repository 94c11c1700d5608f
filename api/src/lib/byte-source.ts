/**
 * A file a service hands out, as bytes rather than an HTTP answer: what it is (size, strong ETag,
 * type, name) and a way to read any part of it. The routes turn it into a ranged answer
 * (routes/ranged.ts: Range, If-Range, 206/416, HEAD); the service never sees a header.
 */
export interface ByteSource {
  /** Bytes in the whole file. */
  size: number;
  /** Strong validator of exactly these bytes, quoted or not (`"abc"` or `abc`). */
  etag: string;
  contentType: string;
  /** Offered to the browser in Content-Disposition. */
  fileName: string;
  /**
   * Bytes `start` to `end` (exclusive), read from storage as they are pulled; returning early (the
   * client went away) stops the reads. Called only for an answer that sends a body, so a source may
   * record there that this part of it is being sent.
   */
  open(start: number, end: number): Promise<AsyncGenerator<Uint8Array>>;
}

/** A (small) stream read whole into memory, e.g. a bundle's site part. */
export async function readWhole(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  const whole = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}
