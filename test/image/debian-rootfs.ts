/**
 * A stand-in for `debian:bookworm-slim`, made on this machine: Debian
 * bookworm by `debootstrap --variant=minbase` from the machine's own apt
 * mirror, then trimmed the way the official slim images are (debuerreotype's
 * slimify and minimizing-config: a dpkg configuration that keeps docs, man
 * pages and translations out of every later install, the same files removed
 * now; apt told to keep no package cache, no translations, compressed lists;
 * no service starts during installs) and packed as a tar for `podman import`.
 *
 * The tar is cached in cacheDir under a name derived from its inputs (suite,
 * variant, mirror, this file's text), so debootstrap runs once per machine
 * until one of them changes. The cache directory can be deleted at any time.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { debianMirror, type SourcesFile } from './apt-sources.ts';

export const SUITE = 'bookworm';
export const VARIANT = 'minbase';
export const DEFAULT_CACHE_DIR = '/var/cache/kube-proxy-ts-test';

/** Emptied now and excluded from later installs (debuerreotype .slimify-excludes). */
const SLIM_EXCLUDE = [
  '/usr/share/doc',
  '/usr/share/groff',
  '/usr/share/info',
  '/usr/share/linda',
  '/usr/share/lintian/overrides',
  '/usr/share/locale',
  '/usr/share/man',
];
/** Kept inside those folders (debuerreotype .slimify-includes, the entries that exist on Debian). */
const SLIM_KEEP: Readonly<Record<string, readonly string[]>> = {
  '/usr/share/doc': ['*/copyright'],
  '/usr/share/locale': ['all_languages', 'currency', 'l10n', 'languages', 'locale.alias'],
};

const APT_CONF: Readonly<Record<string, string>> = {
  'docker-clean': [
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'Dir::Cache::pkgcache "";',
    'Dir::Cache::srcpkgcache "";',
  ].join('\n'),
  'docker-no-languages': 'Acquire::Languages "none";',
  'docker-gzip-indexes': 'Acquire::GzipIndexes "true";',
  'docker-autoremove-suggests': 'Apt::AutoRemove::SuggestsImportant "false";',
};

/** The dpkg configuration of a slim image: path-exclude for each folder, path-include for what it keeps. */
export function dpkgSlimConfig(): string {
  const lines = ['# kube-proxy-ts image test: the "slim" variant of the Debian base image'];
  for (const dir of SLIM_EXCLUDE) {
    lines.push(`path-exclude ${dir}/*`);
    for (const keep of SLIM_KEEP[dir] ?? []) lines.push(`path-include ${dir}/${keep}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The machine's apt sources files, in apt's order (sources.list, then sources.list.d/ sorted). */
export async function readAptSources(etc = '/etc/apt'): Promise<SourcesFile[]> {
  const paths = [join(etc, 'sources.list')];
  const d = join(etc, 'sources.list.d');
  if (existsSync(d))
    paths.push(
      ...(await readdir(d))
        .filter((f) => f.endsWith('.list') || f.endsWith('.sources'))
        .sort()
        .map((f) => join(d, f)),
    );
  const files: SourcesFile[] = [];
  for (const path of paths) if (existsSync(path)) files.push({ path, text: await readFile(path, 'utf8') });
  return files;
}

async function emptyFolder(root: string, dir: string): Promise<void> {
  const abs = join(root, dir);
  if (!existsSync(abs)) return;
  const keep = SLIM_KEEP[dir] ?? [];
  for (const entry of await readdir(abs, { withFileTypes: true })) {
    if (keep.includes(entry.name)) continue;
    const path = join(abs, entry.name);
    if (entry.isDirectory() && keep.includes('*/copyright')) {
      for (const inner of await readdir(path)) if (inner !== 'copyright') await rm(join(path, inner), { recursive: true, force: true });
    } else {
      await rm(path, { recursive: true, force: true });
    }
  }
}

/** Trims a freshly bootstrapped root the way the official slim images are trimmed. */
export async function slimRootfs(root: string): Promise<void> {
  await writeFile(join(root, 'etc/dpkg/dpkg.cfg.d/docker-slim'), dpkgSlimConfig());
  await writeFile(join(root, 'etc/dpkg/dpkg.cfg.d/docker-apt-speedup'), 'force-unsafe-io\n');
  for (const [name, text] of Object.entries(APT_CONF)) await writeFile(join(root, 'etc/apt/apt.conf.d', name), `${text}\n`);
  await writeFile(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\n# no service starts while packages are installed in an image build\nexit 101\n');
  await chmod(join(root, 'usr/sbin/policy-rc.d'), 0o755);
  for (const dir of SLIM_EXCLUDE) await emptyFolder(root, dir);
  // Package lists, caches and logs of the bootstrap; the host's resolver and name (podman provides both).
  for (const dir of ['var/lib/apt/lists', 'var/cache/apt', 'var/log']) {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      if (entry.isDirectory() && (entry.name === 'partial' || entry.name === 'archives')) continue;
      await rm(join(root, dir, entry.name), { recursive: true, force: true });
    }
  }
  await rm(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
  for (const f of ['etc/resolv.conf', 'etc/hostname']) await rm(join(root, f), { force: true });
}

export interface RootfsTar {
  readonly path: string;
  readonly mirror: string;
  /** False when debootstrap ran now. */
  readonly cached: boolean;
  readonly ms: number;
}

/** The cached tar of the stand-in root, made (debootstrap, slim, tar) when missing. */
export async function debianRootfsTar(opts: { cacheDir?: string; mirror?: string; log?: (line: string) => void } = {}): Promise<RootfsTar> {
  const t0 = Date.now();
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const mirror = opts.mirror ?? debianMirror(await readAptSources());
  const recipe = await readFile(fileURLToPath(import.meta.url), 'utf8');
  const key = createHash('sha256')
    .update(JSON.stringify([SUITE, VARIANT, mirror, recipe]))
    .digest('hex')
    .slice(0, 16);
  const path = join(cacheDir, `debian-${SUITE}-${VARIANT}-${key}.tar`);
  if (existsSync(path)) return { path, mirror, cached: true, ms: Date.now() - t0 };

  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, 'build-'));
  try {
    const root = join(work, 'rootfs');
    opts.log?.(`debootstrap --variant=${VARIANT} ${SUITE} ${root} ${mirror}`);
    const r = await execa('debootstrap', [`--variant=${VARIANT}`, SUITE, root, mirror], {
      reject: false,
      all: true,
      stdin: 'ignore',
      timeout: 900_000,
    });
    if (r.exitCode !== 0) throw new Error(`debootstrap from ${mirror} failed (${r.exitCode ?? r.signal}):\n${String(r.all ?? '').slice(-3000)}`);
    await slimRootfs(root);
    const tmp = join(work, 'rootfs.tar');
    const t = await execa('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', tmp, '.'], { reject: false, all: true, stdin: 'ignore' });
    if (t.exitCode !== 0) throw new Error(`tar of ${root} failed:\n${String(t.all ?? '').slice(-2000)}`);
    await rename(tmp, path);
    return { path, mirror, cached: false, ms: Date.now() - t0 };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
