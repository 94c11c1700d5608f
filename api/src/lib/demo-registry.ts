import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DemoBlob, DemoImage } from '../services/seed/demo-image.ts';

export interface DemoRegistry {
  /** `127.0.0.1:port`, the registry part of image references. */
  host: string;
  stop(): Promise<void>;
}

/**
 * A minimal read-only OCI registry (Registry HTTP API v2) on loopback, serving the demo's images
 * from memory: `GET|HEAD /v2/`, manifests by tag or digest, blobs by digest. Nothing can be pushed.
 */
export function startDemoRegistry(images: DemoImage[], opts: { port?: number } = {}): Promise<DemoRegistry> {
  const manifests = new Map<string, DemoBlob>();
  const blobs = new Map<string, DemoBlob>();
  for (const i of images) {
    manifests.set(`${i.repository}:${i.tag}`, i.manifest);
    manifests.set(`${i.repository}@${i.manifest.digest}`, i.manifest);
    for (const b of [i.config, i.layer, i.manifest]) blobs.set(`${i.repository}@${b.digest}`, b);
  }
  const server = http.createServer((req, res) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const fail = (status: number, code: string, message: string) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ errors: [{ code, message }] }));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return fail(405, 'UNSUPPORTED', 'this registry is read-only');
    const url = new URL(req.url ?? '/', 'http://registry');
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(req.method === 'HEAD' ? undefined : '{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return fail(404, 'NOT_FOUND', 'no such route');
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    const found =
      kind === 'manifests'
        ? manifests.get(ref.startsWith('sha256:') ? `${name}@${ref}` : `${name}:${ref}`)
        : blobs.get(`${name}@${ref}`);
    if (!found)
      return fail(
        404,
        kind === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN',
        `${name} ${ref} is not here`,
      );
    res.writeHead(200, {
      'Content-Type': kind === 'manifests' ? found.mediaType : 'application/octet-stream',
      'Content-Length': String(found.bytes.length),
      'Docker-Content-Digest': found.digest,
    });
    res.end(req.method === 'HEAD' ? undefined : found.bytes);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        host: `127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
