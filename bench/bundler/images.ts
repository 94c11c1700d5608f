// The release the archive benchmark builds: five images of random (incompressible, like real
// compressed layers) content, one base layer shared by three of them, ~1.1 GiB of unique blobs.
// The OCI layout is written once into the temp dir and reused by later runs (same seeds, same digests).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildTestImage, pushImage, type TestImage, type TestLayer } from '@outpost/bundler/test-support';
import { MiB } from './common.ts';

const base: TestLayer = { random: { path: 'opt/base/runtime.bin', size: 160 * MiB, seed: 'bench-base' } };
const config = (name: string): TestLayer => ({
  files: { [`etc/outpost/${name}.conf`]: `name=${name}\nport=8080\n`.repeat(50) },
});

export const BENCH_IMAGES: { repository: string; tag: string; layers: TestLayer[] }[] = [
  {
    repository: 'emr/backend',
    tag: '2.4.0',
    layers: [
      base,
      { random: { path: 'app/backend.bin', size: 320 * MiB, seed: 'bench-backend' } },
      config('backend'),
    ],
  },
  {
    repository: 'emr/frontend',
    tag: '2.4.0',
    layers: [
      base,
      { random: { path: 'app/frontend.bin', size: 224 * MiB, seed: 'bench-frontend' } },
      config('frontend'),
    ],
  },
  {
    repository: 'emr/worker',
    tag: '2.4.0',
    layers: [
      base,
      { random: { path: 'app/worker.bin', size: 256 * MiB, seed: 'bench-worker' } },
      config('worker'),
    ],
  },
  {
    repository: 'emr/reports',
    tag: '2.4.0',
    layers: [
      { random: { path: 'app/reports.bin', size: 160 * MiB, seed: 'bench-reports' } },
      config('reports'),
    ],
  },
  {
    repository: 'emr/proxy',
    tag: '2.4.0',
    layers: [{ files: { 'etc/nginx/nginx.conf': 'events {}\nhttp { server { listen 80; } }\n' } }],
  },
];

const LAYOUT = path.join(os.tmpdir(), 'outpost-bench-images-v1');

/** Builds (or reuses) the layout; returns each image with its layout tag. */
export async function benchLayout(
  log: (s: string) => void,
): Promise<{ dir: string; images: (TestImage & { repository: string })[] }> {
  const marker = path.join(LAYOUT, 'bench-images.json');
  try {
    return { dir: LAYOUT, images: JSON.parse(await fs.readFile(marker, 'utf8')) };
  } catch {
    // Not built yet (or built half-way): start over.
  }
  await fs.rm(LAYOUT, { recursive: true, force: true });
  log(`   writing the bench images into ${LAYOUT} (once; later runs reuse them)…`);
  const t0 = performance.now();
  const images: (TestImage & { repository: string })[] = [];
  for (const spec of BENCH_IMAGES) {
    const image = await buildTestImage({
      dir: LAYOUT,
      tag: spec.repository.replace('/', '-'),
      layers: spec.layers,
    });
    images.push({ ...image, repository: spec.repository });
  }
  await fs.writeFile(marker, JSON.stringify(images));
  log(`   written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return { dir: LAYOUT, images };
}

/** Pushes every bench image to `host`; returns the tagged references. */
export async function pushBenchImages(
  host: string,
  layout: { dir: string; images: (TestImage & { repository: string })[] },
): Promise<string[]> {
  const references: string[] = [];
  for (const [i, image] of layout.images.entries()) {
    const reference = `${host}/${image.repository}:${BENCH_IMAGES[i]!.tag}`;
    await pushImage(layout.dir, image.tag, reference);
    references.push(reference);
  }
  return references;
}
