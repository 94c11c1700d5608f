// Per-site parts: buildSitePart for many sites in a row (each signs its manifest), and the bytes a
// site adds to storage — its part; the images archive and content package are shared.
import { randomBytes } from 'node:crypto';
import { buildSitePart, generateSigningKey } from '@outpost/bundler';
import { SCRIPTS, siteOptions } from './site-inputs.ts';
import { verdict } from './common.ts';

export async function benchSiteParts(line: (s: string) => void): Promise<void> {
  const sites = Number(process.env.BENCH_PART_SITES ?? 5_000);
  const key = generateSigningKey();
  const shared = {
    images: { sha256: randomBytes(32).toString('hex'), size: 1_174_405_120 },
    content: { sha256: randomBytes(32).toString('hex'), size: 48_000_000 },
  };
  const inputs = Array.from({ length: sites }, (_, i) => siteOptions(i, shared, key));
  for (let i = 0; i < 200; i++) buildSitePart(inputs[i]!); // warm-up (JIT, the parsed key cache)

  const runs: number[] = [];
  let total = 0;
  let largest = 0;
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    for (const options of inputs) {
      const part = buildSitePart(options);
      if (run === 0) {
        total += part.tarSize;
        largest = Math.max(largest, part.tarSize);
      }
    }
    runs.push(sites / ((performance.now() - t0) / 1000));
  }
  const rate = [...runs].sort((a, b) => a - b)[1]!;
  line(
    `\n2. Per-site parts (buildSitePart, ${sites.toLocaleString()} sites × 3 runs; 8-service compose, 25 settings, ${SCRIPTS.length} scripts, README, signed manifest)`,
  );
  line(
    `   ${runs.map((r) => r.toFixed(0)).join(', ')} sites/s, median ${rate.toFixed(0)} (target ≥ 200 sites/s) → ${verdict(rate >= 200)}`,
  );
  line(
    `   per-site part: mean ${(total / sites / 1000).toFixed(1)} kB, largest ${(largest / 1000).toFixed(1)} kB (target < 100 KB) → ${verdict(largest < 100_000)}`,
  );
}
