/**
 * podman with everything in one directory of the caller's: its storage
 * (images, layers, containers), run and temp state, network configuration and
 * its containers.conf. Nothing goes to the machine's default storage, so test
 * runs are isolated from each other and from anything else on the machine, and
 * destroy() removes all of it.
 *
 * containers.conf holds what this machine's podman (Debian's 4.3 with runc)
 * needs: no default ulimits (the packaged default nofile limit is above what
 * the machine allows), the cgroupfs manager (no systemd) and the runc runtime.
 *
 *   const podman = await createPodman('/tmp/kpt-image-x');
 *   await podman.run(['images']);
 *   spawn(...podman.argv(['run', '--rm', image]));   // the same settings for a child process
 *   await podman.destroy();
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Podman {
  readonly dir: string;
  /** The command line that runs `podman args...` with this instance's settings (for spawn). */
  argv(args: readonly string[]): string[];
  /** Runs podman; resolves with stdout, throws with the command and its output's tail when it fails. */
  run(args: readonly string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** Removes every container, unmounts what podman left mounted, deletes the directory. */
  destroy(): Promise<void>;
}

function containersConf(dir: string): string {
  return [
    '[containers]',
    'default_ulimits = []',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'runtime = "runc"',
    'events_logger = "file"',
    `tmp_dir = "${join(dir, 'tmp')}"`,
    '[network]',
    `network_config_dir = "${join(dir, 'net')}"`,
    '',
  ].join('\n');
}

function storageConf(dir: string): string {
  return ['[storage]', 'driver = "overlay"', `graphroot = "${join(dir, 'storage')}"`, `runroot = "${join(dir, 'run')}"`, ''].join('\n');
}

/** Mount points at or under dir in a mountinfo text, deepest first. */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  const points = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function createPodman(dir: string): Promise<Podman> {
  if (!/^\/[\w./-]+$/.test(dir) || dir.split('/').length < 3)
    throw new Error(`podman directory must be an absolute path below a top-level folder, got ${JSON.stringify(dir)}`);
  await mkdir(join(dir, 'net'), { recursive: true });
  await writeFile(join(dir, 'containers.conf'), containersConf(dir));
  await writeFile(join(dir, 'storage.conf'), storageConf(dir));
  const env = [`CONTAINERS_CONF=${join(dir, 'containers.conf')}`, `CONTAINERS_STORAGE_CONF=${join(dir, 'storage.conf')}`];
  const argv = (args: readonly string[]) => ['env', ...env, 'podman', ...args];

  const podman: Podman = {
    dir,
    argv,
    async run(args, opts = {}) {
      const [file, ...rest] = argv(args);
      const r = await execa(file!, rest, {
        reject: false,
        all: true,
        stdin: 'ignore',
        timeout: opts.timeoutMs ?? 600_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.exitCode !== 0) {
        const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 600_000} ms` : `exited with ${r.exitCode ?? r.signal}`;
        throw new Error(`podman ${args.join(' ')} ${why}:\n${String(r.all ?? '').slice(-4000)}`);
      }
      return String(r.stdout);
    },
    async destroy() {
      await podman.run(['rm', '--all', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
      for (const point of mountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), dir)) await execa('umount', ['-l', point], { reject: false });
      await rm(dir, { recursive: true, force: true });
    },
  };
  return podman;
}
