import { describe, expect, it } from 'vitest';
import type { ByteSource } from '../lib/byte-source.ts';
import { parseRange, rangedResponse } from './ranged.ts';

/** A file in memory that notes every part of it opened (a source records downloads in `open`). */
function memorySource(bytes: Uint8Array) {
  const opened: [number, number][] = [];
  const source: ByteSource = {
    size: bytes.length,
    etag: 'abc123',
    contentType: 'application/octet-stream',
    fileName: 'file.bin',
    open: async (start, end) => {
      opened.push([start, end]);
      return (async function* () {
        yield bytes.subarray(start, end);
      })();
    },
  };
  return { source, opened };
}

describe('rangedResponse', () => {
  it('should parse ranges as RFC 9110 says', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('Bytes = 90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-2', 100)).toBeNull();
    expect(parseRange('bytes=0-1, 5-6', 100)).toBeNull();
    expect(parseRange('items=0-1', 100)).toBeNull();
  });

  it('should open the source only for an answer with a body, and exactly for the bytes it sends', async () => {
    const bytes = new TextEncoder().encode('0123456789');
    const { source, opened } = memorySource(bytes);
    expect((await rangedResponse(source, { method: 'HEAD' })).status).toBe(200);
    expect((await rangedResponse(source, { method: 'HEAD', range: 'bytes=2-3' })).status).toBe(206);
    const beyond = await rangedResponse(source, { method: 'GET', range: 'bytes=10-', requestId: 'r1' });
    expect(beyond.status).toBe(416);
    expect(await beyond.json()).toEqual({
      error: {
        code: 'RANGE_NOT_SATISFIABLE',
        message: 'The range starts past the end of the file (10 bytes).',
        requestId: 'r1',
      },
    });
    expect(opened).toEqual([]);

    const part = await rangedResponse(source, { method: 'GET', range: 'bytes=2-4' });
    expect(part.status).toBe(206);
    expect(part.headers.get('etag')).toBe('"abc123"');
    expect(await part.text()).toBe('234');
    const whole = await rangedResponse(source, { method: 'GET' });
    expect(await whole.text()).toBe('0123456789');
    expect(opened).toEqual([
      [2, 5],
      [0, 10],
    ]);
  });

  it('should answer an empty file with 200 and no body, without opening it', async () => {
    const { source, opened } = memorySource(new Uint8Array(0));
    const res = await rangedResponse(source, { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('0');
    expect(res.body).toBeNull();
    expect(opened).toEqual([]);
  });
});
