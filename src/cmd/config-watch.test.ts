/**
 * The --config watch (upstream Options.eventHandler: exit when the file changes, to be started again with it) on real
 * files, changed the ways a node changes them: kubelet's ConfigMap update, an editor's write-and-rename, an edit in
 * place; and what upstream gets wrong: the ConfigMap update (missed, kubernetes/kubernetes#132877), a touch, and a
 * new content that does not load (a restart would crash-loop on it).
 */
import { appendFile, chmod, mkdir, mkdtemp, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../proxier/log.ts';
import { CONFIG_UPDATED, configChanged } from './config-watch.ts';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const settled = (p: Promise<string>, ms: number) => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

/** Lines logged, as "level: message". */
function recording(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (a: object | string, b?: string): void =>
      void lines.push(`${level}: ${typeof a === 'string' ? a : (b ?? '')}`);
  const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log, lines };
  return log;
}

/** The check the agent makes: here, a file loads unless it says "broken". */
const check = (path: string) => async () => {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return `cannot read --config ${path}: ENOENT`;
  return text.includes('broken') ? `${path}: mode: "broken" is not a proxy mode` : null;
};

/** A ConfigMap volume as kubelet's AtomicWriter lays it out: config.conf -> ..data/config.conf, ..data -> ..<timestamp>. */
async function configMapVolume(): Promise<{ path: string; update: (text: string) => Promise<void> }> {
  dir = await mkdtemp(join(tmpdir(), 'kpt-cm-'));
  let n = 0;
  const writeVersion = async (text: string) => {
    const version = `..2026_12_05_00_00_0${n++}.123456789`;
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

async function plainFile(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'kpt-conf-'));
  const path = join(dir, 'config.conf');
  await writeFile(path, 'mode: iptables\n');
  return path;
}

describe('the --config watch (upstream Options.initWatcher / eventHandler: exit when the file changes)', () => {
  it('fires when kubelet updates the ConfigMap volume (the ..data swap; upstream misses it), not before', async () => {
    const cm = await configMapVolume();
    const changed = configChanged(cm.path, { startedWith: 'mode: iptables\n', check: check(cm.path), log: silentLogger() });
    await readFile(cm.path, 'utf8'); // reading it is no change
    expect(await settled(changed, 300)).toBe('pending');
    await cm.update('mode: nftables\n');
    expect(await settled(changed, 2000)).toBe(CONFIG_UPDATED);
    expect(await readFile(cm.path, 'utf8')).toBe('mode: nftables\n');
  });

  it("fires on an editor's write-and-rename, and on an edit in place", async () => {
    const path = await plainFile();
    const renamed = configChanged(path, { startedWith: 'mode: iptables\n', check: check(path), log: silentLogger() });
    await writeFile(join(dir, '.config.conf.swp'), 'mode: nftables\n');
    await rename(join(dir, '.config.conf.swp'), path);
    expect(await settled(renamed, 2000)).toBe(CONFIG_UPDATED);

    const edited = configChanged(path, { startedWith: 'mode: nftables\n', check: check(path), log: silentLogger() });
    expect(await settled(edited, 200)).toBe('pending');
    await appendFile(path, 'clusterCIDR: 10.244.0.0/16\n');
    expect(await settled(edited, 2000)).toBe(CONFIG_UPDATED);
  });

  it('a touch, a chmod, the same text written again or renamed over it: no change', async () => {
    const path = await plainFile();
    const log = recording();
    const changed = configChanged(path, { startedWith: 'mode: iptables\n', check: check(path), log });
    await utimes(path, new Date(), new Date());
    await chmod(path, 0o600);
    await writeFile(path, 'mode: iptables\n');
    await writeFile(join(dir, 'tmp'), 'mode: iptables\n');
    await rename(join(dir, 'tmp'), path);
    expect(await settled(changed, 600)).toBe('pending');
    expect(log.lines).toEqual([]);
    // The watch still works after the rename replaced the file it was on.
    await appendFile(path, 'clusterCIDR: 10.244.0.0/16\n');
    expect(await settled(changed, 2000)).toBe(CONFIG_UPDATED);
  });

  it('new content that does not load: the problem logged once, the agent keeps running; fixed (through kubelet again), it fires', async () => {
    const cm = await configMapVolume();
    const log = recording();
    const changed = configChanged(cm.path, { startedWith: 'mode: iptables\n', check: check(cm.path), log });
    await cm.update('mode: broken\n');
    await new Promise((r) => setTimeout(r, 600));
    expect(await settled(changed, 0)).toBe('pending');
    expect(log.lines).toEqual([
      `error: the --config file changed, but the new content cannot be used: ${cm.path}: mode: "broken" is not a proxy mode; still running with the configuration it started with`,
    ]);
    await cm.update('mode: nftables\n');
    expect(await settled(changed, 2000)).toBe(CONFIG_UPDATED);
    expect(log.lines.at(-1)).toBe(`warn: ${CONFIG_UPDATED}: exiting to be started again with it`);
  });

  it('a file removed is reported and waited out; put back as it was, nothing happens; then a new content fires', async () => {
    const path = await plainFile();
    const log = recording();
    const changed = configChanged(path, { startedWith: 'mode: iptables\n', check: check(path), log });
    await rm(path);
    await new Promise((r) => setTimeout(r, 400));
    expect(log.lines).toEqual([
      'error: the --config file changed, but the new content cannot be used: cannot read it: ENOENT; still running with the configuration it started with',
    ]);
    await writeFile(path, 'mode: iptables\n');
    await new Promise((r) => setTimeout(r, 400));
    expect(log.lines.at(-1)).toBe('info: the --config file is back to the content the agent started with');
    expect(await settled(changed, 0)).toBe('pending');
    await writeFile(path, 'mode: nftables\n');
    expect(await settled(changed, 2000)).toBe(CONFIG_UPDATED);
  });

  it('fires at once when the file changed between the load and the watch', async () => {
    const path = await plainFile();
    const changed = configChanged(path, { startedWith: 'mode: userspace\n', check: check(path), log: silentLogger() });
    expect(await settled(changed, 1000)).toBe(CONFIG_UPDATED);
  });

  it('never fires without a --config file', async () => {
    expect(await settled(configChanged(null, { startedWith: '', check: async () => null, log: silentLogger() }), 200)).toBe('pending');
  });
});
