/**
 * `npm run image:build [-- --storage DIR]`: builds the image as the image
 * test does (build-image.ts) and prints the commands, the time each step
 * took, the image size and its largest layers. Root only (debootstrap,
 * podman). Without --storage the podman storage is a temporary folder removed
 * at the end; with it the storage is kept, so a second run shows a build from
 * podman's layer cache, and the image can be used:
 *   env CONTAINERS_CONF=DIR/containers.conf CONTAINERS_STORAGE_CONF=DIR/storage.conf podman save -o kpt.tar localhost/kube-proxy-ts:test
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildTestImage } from './build-image.ts';
import { createPodman } from './podman.ts';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { storage: { type: 'string' }, 'cache-dir': { type: 'string' } } });
  const keep = values.storage !== undefined;
  const dir = keep ? resolve(values.storage!) : await mkdtemp(join(tmpdir(), 'kpt-image-'));
  const podman = await createPodman(dir);
  try {
    const repo = resolve(new URL('../..', import.meta.url).pathname);
    const b = await buildTestImage(podman, {
      repo,
      ...(values['cache-dir'] !== undefined ? { cacheDir: values['cache-dir'] } : {}),
      log: (l) => console.log(`==> ${l}`),
    });
    console.log(`\n${b.image}: ${mb(b.bytes)}`);
    console.log(
      `stand-in root ${b.rootfsCached ? '(cached)' : '(debootstrap)'} ${(b.ms.rootfs / 1000).toFixed(1)} s, stand-ins ${(b.ms.standIns / 1000).toFixed(1)} s, podman build ${(b.ms.build / 1000).toFixed(1)} s`,
    );
    console.log('largest layers:');
    for (const l of [...b.layers].sort((x, y) => y.bytes - x.bytes).slice(0, 6))
      console.log(`  ${mb(l.bytes).padStart(9)}  ${l.createdBy.slice(0, 110)}`);
    if (keep)
      console.log(`\nstorage kept in ${dir}: env CONTAINERS_CONF=${dir}/containers.conf CONTAINERS_STORAGE_CONF=${dir}/storage.conf podman images`);
    return 0;
  } finally {
    if (!keep) await podman.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
