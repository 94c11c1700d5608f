import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** A blob of an image held in memory, by digest (`sha256:…`). */
export interface DemoBlob {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** A small single-layer OCI image made in memory: the same input always gives the same digests. */
export interface DemoImage {
  repository: string;
  tag: string;
  manifest: DemoBlob;
  config: DemoBlob;
  layer: DemoBlob;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** A POSIX ustar archive of regular files with fixed owner, mode and time (small files only: held in memory). */
export function tarOf(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
    const body = Buffer.from(text, 'utf8');
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write(octal(0o644, 8), 100, 8, 'ascii');
    h.write(octal(0, 8), 108, 8, 'ascii');
    h.write(octal(0, 8), 116, 8, 'ascii');
    h.write(octal(body.length, 12), 124, 12, 'ascii');
    h.write(octal(0, 12), 136, 12, 'ascii');
    h.write('        ', 148, 8, 'ascii');
    h.write('0', 156, 1, 'ascii');
    h.write('ustar\u000000', 257, 8, 'ascii');
    h.write('root', 265, 32, 'ascii');
    h.write('root', 297, 32, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    parts.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * Builds a linux/amd64 OCI image with one gzipped layer holding `files`, for the demo registry.
 *
 * @example
 * const img = demoImage('demo/emr', '1.0', { 'etc/outpost-demo': 'EMR 1.0\n' });
 */
export function demoImage(repository: string, tag: string, files: Record<string, string>): DemoImage {
  const tar = tarOf(files);
  const layer: DemoBlob = {
    digest: '',
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    bytes: gzipSync(tar, { level: 9 }),
  };
  layer.digest = sha256(layer.bytes);
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2026-01-01T00:00:00Z',
      config: {
        Cmd: ['/bin/sh'],
        Labels: { 'org.opencontainers.image.title': repository, 'org.opencontainers.image.version': tag },
      },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'outpost demo seed' }],
    }),
  );
  const config: DemoBlob = {
    digest: sha256(configBytes),
    mediaType: 'application/vnd.oci.image.config.v1+json',
    bytes: configBytes,
  };
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }],
    }),
  );
  const manifest: DemoBlob = {
    digest: sha256(manifestBytes),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    bytes: manifestBytes,
  };
  return { repository, tag, manifest, config, layer };
}

/** The demo release's images: a tiny EMR back end and front end. */
export function demoImages(): DemoImage[] {
  return [
    demoImage('demo/emr-backend', '1.0', {
      'etc/os-release': 'NAME=outpost-demo\n',
      'app/backend.txt': 'Outpost demo EMR back end 1.0\n',
    }),
    demoImage('demo/emr-frontend', '1.0', {
      'etc/os-release': 'NAME=outpost-demo\n',
      'www/index.html': '<h1>Outpost demo EMR</h1>\n',
    }),
  ];
}
