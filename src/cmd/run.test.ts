/**
 * The --config watch (upstream exits when the file changes, to be restarted
 * with it) on real files, changed the ways a node changes them.
 */
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../proxier/log.ts';
import { configChanged } from './run.ts';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const settled = (p: Promise<string>, ms: number) => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

/** A ConfigMap volume as kubelet's AtomicWriter lays it out: config.conf -> ..data/config.conf, ..data -> ..<timestamp>. */
async function configMapVolume(): Promise<{ path: string; update: (text: string) => Promise<void> }> {
  dir = await mkdtemp(join(tmpdir(), 'kpt-cm-'));
  let n = 0;
  const writeVersion = async (text: string) => {
    const version = `..2026_12_04_20_00_0${n++}.123456789`;
    await mkdir(join(dir, version));
    await writeFile(join(dir, version, 'config.conf'), text);
    return version;
  };
  let current = await writeVersion('mode: iptables\n');
  await symlink(current, join(dir, '..data'));
  await symlink('..data/config.conf', join(dir, 'config.conf'));
  return {
    path: join(dir, 'config.conf'),
    // What kubelet does on a ConfigMap update: a new timestamped directory, `..data_tmp` pointing at it renamed over
    // `..data` (the atomic swap), then the old directory removed.
    update: async (text) => {
      const next = await writeVersion(text);
      await symlink(next, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      await rm(join(dir, current), { recursive: true });
      current = next;
    },
  };
}

describe('the --config watch (upstream: exit when the file changes)', () => {
  it('fires when kubelet updates the ConfigMap volume (the ..data swap), not before', async () => {
    const cm = await configMapVolume();
    const changed = configChanged(cm.path, silentLogger());
    await readFile(cm.path, 'utf8'); // reading it is no change
    expect(await settled(changed, 300)).toBe('pending');
    await cm.update('mode: nftables\n');
    expect(await settled(changed, 2000)).toBe('config file changed');
    expect(await readFile(cm.path, 'utf8')).toBe('mode: nftables\n');
  });

  it("fires on an editor's write-and-rename and on an edit in place", async () => {
    dir = await mkdtemp(join(tmpdir(), 'kpt-conf-'));
    const path = join(dir, 'config.conf');
    await writeFile(path, 'mode: iptables\n');
    const renamed = configChanged(path, silentLogger());
    await writeFile(join(dir, '.config.conf.swp'), 'mode: nftables\n');
    await rename(join(dir, '.config.conf.swp'), path);
    expect(await settled(renamed, 2000)).toBe('config file changed');

    const edited = configChanged(path, silentLogger());
    expect(await settled(edited, 200)).toBe('pending');
    await appendFile(path, 'clusterCIDR: 10.244.0.0/16\n');
    expect(await settled(edited, 2000)).toBe('config file changed');
  });

  it('never fires without a --config file', async () => {
    expect(await settled(configChanged(null, silentLogger()), 200)).toBe('pending');
  });
});
