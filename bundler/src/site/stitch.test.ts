import { describe, expect, it } from 'vitest';
import { tarHeader } from '../archive/tar.ts';
import { rangeSlices, stitchPlan } from './stitch.ts';

describe('stitchPlan', () => {
  it('should lay out header, object and padding for each shared object, then the trailer', () => {
    const plan = stitchPlan({
      sitePartSize: 3072,
      shared: [
        { path: 'outpost-A-1/content/c.zip', size: 1024, mtime: 100 },
        { path: 'outpost-A-1/images/images.tgz', size: 1000, mtime: 100 },
      ],
    });
    expect(plan.segments.map((segment) => [segment.kind, segment.offset, segment.length])).toEqual([
      ['site', 0, 3072],
      ['header', 3072, 512],
      ['object', 3584, 1024],
      ['header', 4608, 512],
      ['object', 5120, 1000],
      ['padding', 6120, 24],
      ['trailer', 6144, 1024],
    ]);
    expect(plan.totalSize).toBe(7168);
    const header = plan.segments[3];
    expect(
      header?.kind === 'header' &&
        Buffer.from(header.bytes).equals(
          tarHeader({ name: 'outpost-A-1/images/images.tgz', size: 1000, mtime: 100 }),
        ),
    ).toBe(true);
    const object = plan.segments[4];
    expect(object?.kind === 'object' && object.index).toBe(1);
  });

  it('should refuse a site part that does not end on a tar block', () => {
    expect(() => stitchPlan({ sitePartSize: 1000, shared: [] })).toThrow(/512-byte/);
  });

  it('should cut any byte range into the slices of the segments it covers', () => {
    const plan = stitchPlan({ sitePartSize: 1024, shared: [{ path: 'x/images/images.tgz', size: 700 }] });
    // Reassemble the whole download from every 1..97-byte window and compare with the straight layout.
    const site = Buffer.alloc(1024, 7);
    const object = Buffer.alloc(700, 9);
    const whole = Buffer.concat(
      plan.segments.map((segment) =>
        segment.kind === 'site' ? site : segment.kind === 'object' ? object : Buffer.from(segment.bytes),
      ),
    );
    expect(whole.length).toBe(plan.totalSize);
    for (let start = 0; start < plan.totalSize; start += 97) {
      const end = Math.min(plan.totalSize - 1, start + 96);
      const bytes = Buffer.concat(
        rangeSlices(plan, start, end).map(({ segment, start: from, end: to }) =>
          (segment.kind === 'site'
            ? site
            : segment.kind === 'object'
              ? object
              : Buffer.from(segment.bytes)
          ).subarray(from, to),
        ),
      );
      expect(bytes.equals(whole.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
    expect(() => rangeSlices(plan, 0, plan.totalSize)).toThrow(RangeError);
  });
});
