import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Loads an `images.tgz` into a podman store of its own under `root` (vfs, no systemd: it runs
 * unprivileged here), as a site's `zcat | docker load` would, and gives back each loaded image's ID
 * (its config digest, without `sha256:`) by its tagged name.
 */
export async function podmanLoad(tgz: string, root: string): Promise<Map<string, string>> {
  const podman = [
    '--root',
    path.join(root, 'storage'),
    '--runroot',
    path.join(root, 'run'),
    '--storage-driver',
    'vfs',
    '--events-backend',
    'file',
    '--cgroup-manager',
    'cgroupfs',
  ];
  // podman refuses a gzipped outer archive; the site's docker does not. Fed as `zcat | podman load` would.
  await run('sh', ['-c', `zcat "$0" | podman "$@" load`, tgz, ...podman], { maxBuffer: 16 * 1024 * 1024 });
  const { stdout } = await run('podman', [
    ...podman,
    'images',
    '--no-trunc',
    '--format',
    '{{.Id}} {{.Repository}}:{{.Tag}}',
  ]);
  return new Map(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string])
      .map(([id, name]) => [name, id.replace(/^sha256:/, '')]),
  );
}
