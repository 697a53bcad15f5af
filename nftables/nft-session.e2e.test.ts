/**
 * NftSession against the real `nft -i` (nft 1.0.6) in network namespaces of
 * its own (needs root): transactions staged and included behave as `nft -f`
 * (the fake's semantics cases give the same outcome, error kind and line);
 * partial syncs through it converge; a process killed between transactions
 * is replaced, one killed during a transaction fails that transaction and a
 * full sync afterwards converges. The staging directory removed under the
 * session is made again; a transaction that cannot be staged at all
 * (ENOSPC) runs as `nft -f -`, and the session takes over again once it can.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { createNftLauncher } from '../src/system/nft-launcher.ts';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { NftError } from './errors.ts';
import { SEMANTICS } from './fake-nft.case.ts';
import { FakeNft } from './fake-nft.ts';
import { Nft } from './nft.ts';
import { NftSession, type NftLauncher } from './nft-session.ts';
import { tableOf } from './render.ts';
import { SyncDriver } from './sync.case.ts';
import { upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptnfts';
let serial = 0;

beforeAll(async () => net.sweepNamespaces(PREFIX));
afterAll(async () => net.sweepNamespaces(PREFIX));

interface Env {
  readonly nft: Nft;
  readonly session: NftSession;
  /** nft without the session (a process per command), in the same namespace. */
  readonly plain: Nft;
  /** Pids of the nft -i processes started, in order. */
  readonly pids: number[];
  /** Called right before a transaction is handed to the process. */
  beforeSend: ((pid: number) => void) | null;
  /** Called right after a transaction was handed to the process. */
  afterSend: ((pid: number) => void) | null;
}

async function inNamespace(
  fn: (env: Env) => Promise<void>,
  opts: { readonly dirs?: readonly string[]; readonly onStaging?: (problem: string | null) => void } = {},
): Promise<void> {
  const ns = `${PREFIX}-${process.pid}-${serial++}`;
  await net.addNamespace(ns);
  const real = createNftLauncher({ netns: ns, ...(opts.dirs ? { dirs: opts.dirs } : {}) });
  const env: Env = {
    nft: null as unknown as Nft,
    session: null as unknown as NftSession,
    plain: null as unknown as Nft,
    pids: [],
    beforeSend: null,
    afterSend: null,
  };
  const launcher: NftLauncher = {
    start: (cmd, args, e, events) => {
      const child = real.start(cmd, args, e, events);
      env.pids.push(child.pid!);
      const send = (line: string) => {
        env.beforeSend?.(child.pid!);
        child.send(line);
        env.afterSend?.(child.pid!);
      };
      return { send, close: () => child.close() };
    },
    stage: (t) => real.stage(t),
    dispose: () => real.dispose(),
  };
  const exec = createExecaRunner({ netns: ns });
  const session = new NftSession(launcher);
  Object.assign(env, { session, nft: new Nft(exec, { session, ...(opts.onStaging ? { onStaging: opts.onStaging } : {}) }), plain: new Nft(exec) });
  try {
    await fn(env);
  } finally {
    await session.close();
    await net.deleteNamespace(ns);
  }
}

describe('nft -i with staged transactions behaves as nft -f', () => {
  for (const c of SEMANTICS) {
    it(c.name, async () => {
      await inNamespace(async ({ nft, pids }) => {
        const fake = new FakeNft();
        if (c.setup) await Promise.all([nft.run(c.setup), fake.run(c.setup)]);
        const r = await nft.run(c.tx).then(
          () => null,
          (e: unknown) => e as NftError,
        );
        await fake.run(c.tx).catch(() => undefined);
        expect(r === null ? 'ok' : r.kind, r?.message).toBe(c.expect);
        if (c.line !== undefined) expect(r!.line).toBe(c.line);
        const [ft, rt] = [await fake.list('ip'), await nft.list('ip')];
        if (ft === null || rt === null) expect(ft).toBe(rt);
        else expect(isEmptyDiff(diffTables(ft, rt)), JSON.stringify(diffTables(ft, rt))).toBe(true);
        expect(pids).toHaveLength(1);
      });
    });
  }
});

describe('listing through the session', () => {
  it('answers as nft -t -j alone, sees changes made by other processes in between, and survives a refused transaction', async () => {
    await inNamespace(async ({ nft, plain, pids }) => {
      expect(await nft.listNames('ip')).toBeNull();
      const driver = new SyncDriver(nft, upstreamOptions('IPv4'));
      await driver.sync(upstreamSnapshot('IPv4', [svc('a', '172.30.0.1')], [eps('a', ['10.0.1.1', '10.0.1.2'])]), 1000);
      const listed = await nft.listNames('ip');
      expect(listed).toEqual(await plain.listNames('ip'));
      expect(listed!.chains).toContain('services');
      expect(listed!.sets).toContainEqual({ name: 'service-ips', kind: 'map' });
      expect(await nft.listNames('ip6')).toBeNull();
      // Outside changes between two listings of the same process (nft -i keeps a cache: it must notice).
      await plain.run('add chain ip kube-proxy outside/added\nadd set ip kube-proxy outside-set { type ipv4_addr; }\n');
      const again = await nft.listNames('ip');
      expect(again!.chains).toContain('outside/added');
      expect(again!.sets).toContainEqual({ name: 'outside-set', kind: 'set' });
      const err = await nft.run('add rule ip kube-proxy no-such-chain counter\n').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NftError);
      expect(await nft.listNames('ip')).toEqual(await plain.listNames('ip'));
      expect(pids).toHaveLength(1);
    });
  });
});

const svc = (name: string, ip: string) => makeService('ns1', name, { clusterIP: ip, ports: [{ name: 'p80', port: 80 }] });
const eps = (name: string, ips: string[]) =>
  makeEndpointSlice('ns1', name, `${name}-1`, { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] });

describe("the session's process dying", () => {
  it('is replaced when it died between transactions; a transaction it died in fails, and the full sync after it converges', async () => {
    await inNamespace(async (env) => {
      const driver = new SyncDriver(env.nft, upstreamOptions('IPv4'));
      const snap = (ips: string[]) =>
        upstreamSnapshot('IPv4', [svc('a', '172.30.0.1'), svc('b', '172.30.0.2')], [eps('a', ips), eps('b', ['10.0.2.1'])]);
      const converged = async () => {
        const d = diffTables(tableOf(driver.lastRender!), await env.nft.list('ip'));
        expect(isEmptyDiff({ ...d, extraChains: d.extraChains.filter((c) => !driver.applied!.stale.has(c)) }), JSON.stringify(d)).toBe(true);
      };
      await driver.sync(snap(['10.0.1.1']), 1000);
      process.kill(env.pids[0]!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      await driver.sync(snap(['10.0.1.2']), 2000);
      await converged();
      expect(env.pids).toHaveLength(2);

      // Stopped before the transaction reaches it, so that it cannot apply it (include and marker go in one write)
      // before it is killed.
      env.beforeSend = (pid) => process.kill(pid, 'SIGSTOP');
      env.afterSend = (pid) => process.kill(pid, 'SIGKILL');
      const err = (await driver.sync(snap(['10.0.1.3']), 3000).catch((e: unknown) => e)) as NftError;
      expect(err).toBeInstanceOf(NftError);
      expect(err.kind).toBe('other');
      env.beforeSend = null;
      env.afterSend = null;
      // The caller's rule after any failure: a full sync, against what the table holds.
      await driver.sync(snap(['10.0.1.3']), 4000, true);
      await converged();
      expect(env.pids).toHaveLength(3);
    });
  });
});

describe('staging under a long-running agent', () => {
  const snap = (ips: string[]) => upstreamSnapshot('IPv4', [svc('a', '172.30.0.1')], [eps('a', ips)]);
  const stagingDirs = async (parent: string) => (await readdir(parent)).filter((n) => n.startsWith('kube-proxy-nft-'));

  interface Staging {
    readonly env: Env;
    /** A driver whose first sync (10.0.1.1) has run. */
    readonly driver: SyncDriver;
    /** The one staging candidate, and its first staging directory's name. */
    readonly parent: string;
    readonly first: string;
    /** What Nft's onStaging was told, in order. */
    readonly told: (string | null)[];
  }

  /** A session in a namespace whose only staging candidate is `parent` (made in a temporary `base`), removed after. */
  async function staged(body: (s: Staging) => Promise<void>, parentIn: (base: string) => Promise<string> = async (b) => b): Promise<void> {
    const base = await mkdtemp(join(tmpdir(), 'kpt-stage-'));
    const parent = await parentIn(base);
    const told: (string | null)[] = [];
    try {
      await inNamespace(
        async (env) => {
          const driver = new SyncDriver(env.nft, upstreamOptions('IPv4'));
          await driver.sync(snap(['10.0.1.1']), 1000);
          const [first] = await stagingDirs(parent);
          await body({ env, driver, parent, first: first!, told });
        },
        { dirs: [parent], onStaging: (p) => told.push(p) },
      );
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  }

  it('makes a new staging directory when its own was removed (systemd-tmpfiles ageing out /tmp), through the same nft -i', async () => {
    await staged(async ({ env, driver, parent, first, told }) => {
      await rm(join(parent, first), { recursive: true });
      await driver.sync(snap(['10.0.1.2']), 2000);
      expect(await stagingDirs(parent)).toHaveLength(1);
      expect(await stagingDirs(parent)).not.toContain(first);
      expect(diffTables(tableOf(driver.lastRender!), await env.nft.list('ip')).missingChains).toEqual([]);
      expect(JSON.stringify(await env.nft.list('ip'))).toContain('10.0.1.2');
      expect([env.pids.length, told]).toEqual([1, []]);
    });
  });

  it('stages again in a new directory when writing the staged file fails (ENOSPC), through the same nft -i', async () => {
    await staged(async ({ env, driver, parent, first, told }) => {
      // Writes to /dev/full fail with the kernel's ENOSPC.
      await rm(join(parent, first, 'transaction.nft'));
      await symlink('/dev/full', join(parent, first, 'transaction.nft'));
      await driver.sync(snap(['10.0.1.2']), 2000);
      expect(JSON.stringify(await env.nft.list('ip'))).toContain('10.0.1.2');
      const now = await stagingDirs(parent);
      expect([now.length, now.includes(first), env.pids.length, told]).toEqual([1, false, 1, []]);
    });
  });

  it('applies a transaction that cannot be staged anywhere as nft -f -, says so once, and says when staging works again', async () => {
    // The only candidate is a symlink: to a real directory, then to /dev/full (nothing can be made under it), then
    // back.
    let real = '';
    const point = async (parent: string, to: string) => {
      await rm(parent);
      await symlink(to, parent);
    };
    const link = async (base: string) => {
      real = join(base, 'real');
      await mkdir(real);
      await symlink(real, join(base, 'tmp'));
      return join(base, 'tmp');
    };
    await staged(async ({ env, driver, parent, first, told }) => {
      await point(parent, '/dev/full');
      await driver.sync(snap(['10.0.1.2']), 2000);
      await driver.sync(snap(['10.0.1.3']), 3000);
      expect(JSON.stringify(await env.nft.list('ip'))).toContain('10.0.1.3');
      expect(told).toHaveLength(1);
      expect(told[0]).toMatch(
        /^cannot stage a transaction \(\d+ bytes\): ENOTDIR; in a new directory: cannot stage nft transactions in \S+\/tmp: ENOTDIR$/,
      );

      await point(parent, real);
      await driver.sync(snap(['10.0.1.4']), 4000);
      expect(JSON.stringify(await env.nft.list('ip'))).toContain('10.0.1.4');
      expect(told).toEqual([told[0], null]);
      // A new directory; the first stays, since it could not be reached to be removed while its path led nowhere.
      expect((await stagingDirs(parent)).filter((d) => d !== first)).toHaveLength(1);
      // The session's process was never disturbed.
      expect(env.pids).toHaveLength(1);
    }, link);
  });
});
