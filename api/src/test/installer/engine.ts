import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runProcess } from '@outpost/bundler/test-support';

/**
 * A real container engine for the installer tests: podman (runc, host network, cgroupfs) with its
 * storage, run folder and Docker-compatible socket in a folder of its own, so that test files run
 * side by side without seeing each other's containers (docs/site-install.md, ../shared/STACK.md).
 * The docker CLI and Debian's docker-compose (v1) talk to the socket, as they would to Docker.
 */
export interface Engine {
  dir: string;
  /** DOCKER_HOST and CONTAINERS_CONF for the scripts and the CLIs. */
  env: Record<string, string>;
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

const NEEDED = ['podman', 'runc', 'docker', 'docker-compose', 'busybox', 'dash', 'openssl'];

/** The engine, or why it cannot run here (then the tests that need it say so and skip). */
export async function startEngine(): Promise<Engine | { unavailable: string }> {
  for (const command of NEEDED) {
    if (spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0) {
      return { unavailable: `${command} is not installed (scripts/ensure-prereqs.sh installs it)` };
    }
  }
  // Short: podman's run folder path must stay under ~50 characters (socket paths).
  const dir = await fs.mkdtemp('/tmp/ope-');
  const conf = path.join(dir, 'containers.conf');
  await fs.writeFile(
    conf,
    [
      '[containers]',
      'default_ulimits = []',
      'netns = "host"',
      '',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'runtime = "runc"',
      `tmp_dir = "${dir}/t"`,
      `volume_path = "${dir}/s/volumes"`,
      '',
    ].join('\n'),
  );
  // The same storage for the podman CLI (the installer runs `podman healthcheck run` on a podman
  // engine, whose health checks otherwise need systemd timers to run).
  const storage = path.join(dir, 'storage.conf');
  await fs.writeFile(
    storage,
    ['[storage]', 'driver = "vfs"', `graphroot = "${dir}/s"`, `runroot = "${dir}/r"`, ''].join('\n'),
  );
  const socket = path.join(dir, 'p.sock');
  const env = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage, DOCKER_HOST: `unix://${socket}` };
  const podmanArgs = [
    '--root',
    path.join(dir, 's'),
    '--runroot',
    path.join(dir, 'r'),
    '--storage-driver',
    'vfs',
  ];
  const log = await fs.open(path.join(dir, 'service.log'), 'w');
  const service = spawn('podman', [...podmanArgs, 'system', 'service', '--time', '0', `unix://${socket}`], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd],
    env: { ...process.env, ...env },
  });
  service.unref();
  await log.close();
  const docker = (args: string[]) => runProcess('docker', args, env);
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (existsSync(socket)) {
      const info = await docker(['info', '--format', '{{.ServerVersion}}']);
      if (info.code === 0) {
        return {
          dir,
          env,
          docker,
          async stop() {
            await runProcess('podman', [...podmanArgs, 'rm', '-a', '-f', '-t', '0'], env);
            await runProcess('podman', [...podmanArgs, 'volume', 'prune', '-f'], env);
            try {
              process.kill(-service.pid!, 'SIGTERM');
            } catch {
              /* already gone */
            }
            await new Promise((r) => setTimeout(r, 300));
            try {
              process.kill(-service.pid!, 'SIGKILL');
            } catch {
              /* already gone */
            }
            await runProcess('sh', [
              '-c',
              `grep -o ' ${dir}/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`,
            ]);
            await fs.rm(dir, { recursive: true, force: true });
          },
        };
      }
      last = info.stderr;
    }
    if (service.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const serviceLog = await fs.readFile(path.join(dir, 'service.log'), 'utf8').catch(() => '');
  try {
    process.kill(-service.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await fs.rm(dir, { recursive: true, force: true });
  return {
    unavailable: `podman's Docker-compatible service did not start: ${(last || serviceLog).trim().slice(0, 500)}`,
  };
}

/** A free TCP port on loopback (containers use the host's network, each service its own port). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
