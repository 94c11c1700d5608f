import { describe, expect, it } from 'vitest';
import { timingSafeEqual, timingSafeEqualString } from './crypto.ts';

describe('timingSafeEqual', () => {
  it('should be true for the same bytes and false for any other', () => {
    const a = new Uint8Array([1, 2, 3, 4]);
    expect(timingSafeEqual(a, new Uint8Array([1, 2, 3, 4]))).toBe(true);
    expect(timingSafeEqual(a, new Uint8Array([1, 2, 3, 5]))).toBe(false);
    expect(timingSafeEqual(a, new Uint8Array([0, 2, 3, 4]))).toBe(false);
    expect(timingSafeEqual(a, new Uint8Array([1, 2, 3]))).toBe(false);
    expect(timingSafeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(timingSafeEqual(Buffer.from('ab'), new TextEncoder().encode('ab'))).toBe(true);
  });

  it('should compare strings by their UTF-8 bytes', () => {
    expect(timingSafeEqualString('csrf-é', 'csrf-é')).toBe(true);
    expect(timingSafeEqualString('csrf-é', 'csrf-e')).toBe(false);
    expect(timingSafeEqualString('', 'x')).toBe(false);
  });
});
