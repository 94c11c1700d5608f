/**
 * A request body as the API gets one: a web stream over `data` in `chunk`-byte pieces, pulled only
 * when read (high-water mark 0), so `state` tells how much the code under test asked for and
 * whether it cancelled the rest.
 */
export function byteStream(data: Uint8Array, chunk = 64 * 1024) {
  const state = { pulled: 0, cancelled: false };
  let pos = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (pos >= data.length) {
          c.close();
          return;
        }
        const piece = data.subarray(pos, pos + chunk);
        pos += piece.length;
        state.pulled += piece.length;
        c.enqueue(piece);
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}
