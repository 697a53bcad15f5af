/**
 * A service-account volume laid out as kubelet's AtomicWriter writes a
 * projected volume (/var/run/secrets/kubernetes.io/serviceaccount): the files
 * live in a timestamped directory `..2026_11_23_08_00_00.123456789`, `..data`
 * is a symlink to it, and each visible file (`token`, `ca.crt`, `namespace`)
 * is a symlink through `..data`. rotate() does what kubelet does on a token
 * refresh: write a new timestamped directory, point a temporary symlink at it,
 * rename it over `..data` (the atomic swap), remove the old directory.
 */
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ServiceAccountVolume {
  readonly dir: string;
  /** The path a kubeconfig's tokenFile or the in-cluster loader reads. */
  readonly tokenFile: string;
  /** Replaces the token with kubelet's atomic ..data swap. */
  rotate(token: string): Promise<void>;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.${String(process.hrtime.bigint() % 1_000_000_000n).padStart(9, '0')}`;
}

export async function serviceAccountVolume(dir: string, files: { token: string; caPem: string; namespace?: string }): Promise<ServiceAccountVolume> {
  await mkdir(dir, { recursive: true });
  const content = { token: files.token, 'ca.crt': files.caPem, namespace: files.namespace ?? 'kube-system' };
  const writeVersion = async (): Promise<string> => {
    const version = stamp();
    await mkdir(join(dir, version));
    for (const [name, text] of Object.entries(content)) await writeFile(join(dir, version, name), text, { mode: 0o644 });
    return version;
  };
  const first = await writeVersion();
  await symlink(first, join(dir, '..data'));
  for (const name of Object.keys(content)) await symlink(join('..data', name), join(dir, name));
  return {
    dir,
    tokenFile: join(dir, 'token'),
    async rotate(token) {
      content.token = token;
      const old = await readlink(join(dir, '..data'));
      const version = await writeVersion();
      await symlink(version, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      await rm(join(dir, old), { recursive: true, force: true });
    },
  };
}
