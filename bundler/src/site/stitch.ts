import { tarEntryLength, tarHeader, tarPadding, tarTrailer } from '../archive/tar.ts';

export interface SharedObject {
  /** Path inside the tar, e.g. `outpost-KSM-2.4.0/images/images.tgz`. */
  path: string;
  size: number;
  /** Seconds since the epoch for the tar header; default 0. Use the site part's `created` to match it. */
  mtime?: number;
}

export type StitchSegment = { offset: number; length: number } & (
  | { kind: 'site' }
  | { kind: 'header'; bytes: Uint8Array }
  | { kind: 'object'; path: string; size: number; index: number }
  | { kind: 'padding'; bytes: Uint8Array }
  | { kind: 'trailer'; bytes: Uint8Array }
);

export interface StitchPlan {
  segments: StitchSegment[];
  totalSize: number;
}

/**
 * The exact byte layout of the one-file download: the per-site tar (written without a trailer),
 * then for each shared object a tar header, the object's bytes and zero padding, then the trailer.
 * Every segment carries its `offset` and `length`, so a server can answer any Range by streaming
 * the segments it overlaps. `object` segments point back to `shared[index]`.
 *
 * @example
 * const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
 * response.headers.set('content-length', String(plan.totalSize));
 */
export function stitchPlan(options: { sitePartSize: number; shared: SharedObject[] }): StitchPlan {
  const { sitePartSize, shared } = options;
  if (!Number.isSafeInteger(sitePartSize) || sitePartSize < 0 || sitePartSize % 512 !== 0) {
    throw new Error(`the site part size ${sitePartSize} is not a whole number of 512-byte blocks`);
  }
  const segments: StitchSegment[] = [];
  let offset = 0;
  const push = (segment: StitchSegment) => {
    segments.push(segment);
    offset += segment.length;
  };
  push({ kind: 'site', offset, length: sitePartSize });
  shared.forEach((object, index) => {
    const header = tarHeader({ name: object.path, size: object.size, mtime: object.mtime ?? 0 });
    push({ kind: 'header', offset, length: header.length, bytes: new Uint8Array(header) });
    push({ kind: 'object', offset, length: object.size, path: object.path, size: object.size, index });
    const padding = tarPadding(object.size);
    if (padding.length > 0)
      push({ kind: 'padding', offset, length: padding.length, bytes: new Uint8Array(padding) });
  });
  const trailer = tarTrailer();
  push({ kind: 'trailer', offset, length: trailer.length, bytes: new Uint8Array(trailer) });

  const expected =
    sitePartSize + shared.reduce((sum, object) => sum + tarEntryLength(object.size), 0) + trailer.length;
  if (offset !== expected) throw new Error(`stitch plan adds up to ${offset} bytes, expected ${expected}`);
  return { segments, totalSize: offset };
}

export interface RangeSlice {
  segment: StitchSegment;
  /** First byte within the segment. */
  start: number;
  /** One past the last byte within the segment. */
  end: number;
}

/**
 * The parts of each segment that bytes `start` to `end` (inclusive, as in an HTTP Range header)
 * of the stitched download cover, in order.
 *
 * @example
 * for (const { segment, start, end } of rangeSlices(plan, 1_000_000, plan.totalSize - 1)) { … }
 */
export function rangeSlices(plan: StitchPlan, start: number, end: number): RangeSlice[] {
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    end < start ||
    end >= plan.totalSize
  ) {
    throw new RangeError(`range ${start}-${end} is outside 0-${plan.totalSize - 1}`);
  }
  const slices: RangeSlice[] = [];
  for (const segment of plan.segments) {
    const from = Math.max(start, segment.offset);
    const to = Math.min(end + 1, segment.offset + segment.length);
    if (from < to) slices.push({ segment, start: from - segment.offset, end: to - segment.offset });
  }
  return slices;
}
