/**
 * Builds the repository's Dockerfile, unchanged, the way the image test does:
 * stand-in bases (stand-ins.ts, from the cached debootstrap root of
 * debian-rootfs.ts) passed as build arguments, `podman build --isolation
 * chroot --network host --pull=never`: no Docker engine, no registry. Returns
 * the image with its size, per-layer sizes and how long each step took.
 */
import { execa } from 'execa';
import { debianRootfsTar } from './debian-rootfs.ts';
import type { Podman } from './podman.ts';
import { makeStandIns } from './stand-ins.ts';

export const TEST_IMAGE = 'localhost/kube-proxy-ts:test';

export interface Layer {
  readonly bytes: number;
  readonly createdBy: string;
}

export interface ImageBuild {
  readonly image: string;
  readonly bytes: number;
  /** Newest first, as `podman history` lists them. */
  readonly layers: readonly Layer[];
  /** The build command, as run (for the README and the log). */
  readonly command: readonly string[];
  readonly ms: { readonly rootfs: number; readonly standIns: number; readonly build: number };
  readonly rootfsCached: boolean;
}

export function buildCommand(repo: string, bases: { base: string; node: string }, tag = TEST_IMAGE): string[] {
  return [
    'build',
    '--isolation',
    'chroot',
    '--network',
    'host',
    '--pull=never',
    '--build-arg',
    `NODE_IMAGE=${bases.node}`,
    '--build-arg',
    `BASE_IMAGE=${bases.base}`,
    '-t',
    tag,
    '-f',
    `${repo}/Dockerfile`,
    repo,
  ];
}

export async function imageSize(podman: Podman, image: string): Promise<{ bytes: number; layers: Layer[] }> {
  const bytes = Number((await podman.run(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
  const history = JSON.parse(await podman.run(['history', '--format', 'json', image])) as { size: number; CreatedBy: string }[];
  const layers = history.map((l) => ({
    bytes: l.size,
    createdBy: l.CreatedBy.replace(/\s+/g, ' ')
      .replace(/^\/bin\/sh -c (#\(nop\) )?/, '')
      .trim(),
  }));
  return { bytes, layers };
}

/** Throws naming every missing program (and how CI installs them) before anything runs. */
export async function requireTools(tools: readonly string[] = ['podman', 'runc', 'debootstrap', 'tar']): Promise<void> {
  const missing: string[] = [];
  for (const t of tools) if ((await execa('sh', ['-c', `command -v ${t}`], { reject: false })).exitCode !== 0) missing.push(t);
  if (missing.length > 0)
    throw new Error(`the image build needs ${missing.join(', ')} on PATH (as root): apt-get install podman runc debootstrap, as .ci/run does`);
}

export async function buildTestImage(
  podman: Podman,
  opts: { repo: string; cacheDir?: string; tag?: string; log?: (line: string) => void },
): Promise<ImageBuild> {
  const log = opts.log ?? (() => undefined);
  await requireTools();
  const rootfs = await debianRootfsTar({ ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}), log });
  log(`stand-in root ${rootfs.cached ? 'from cache' : 'bootstrapped'}: ${rootfs.path} (${rootfs.ms} ms, mirror ${rootfs.mirror})`);
  const t1 = Date.now();
  const bases = await makeStandIns(podman, rootfs, log);
  const standIns = Date.now() - t1;
  const command = buildCommand(opts.repo, bases, opts.tag);
  log(`podman ${command.join(' ')}`);
  const t2 = Date.now();
  await podman.run(command, { timeoutMs: 900_000 });
  const build = Date.now() - t2;
  const image = opts.tag ?? TEST_IMAGE;
  const { bytes, layers } = await imageSize(podman, image);
  return { image, bytes, layers, command, ms: { rootfs: rootfs.ms, standIns, build }, rootfsCached: rootfs.cached };
}
