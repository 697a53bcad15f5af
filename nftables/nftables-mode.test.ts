import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService, makeServiceCIDR } from '../test/builders.ts';
import { ManualClock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import { ApplyError, type OutsideChange, type SyncContext } from '../proxier/mode.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { FakeNft } from './fake-nft.ts';
import type { LiveNames } from './full-sync.ts';
import type { NftFamily } from './model.ts';
import type { ListNamesOptions } from './nft.ts';
import { FULL_SYNC_PERIOD_MS } from '../proxier/mode.ts';
import { NftablesMode } from './nftables-mode.ts';
import { tableOf } from './render.ts';
import type { NftGeneration } from './objects.ts';
import { TEST_NODE, UPSTREAM_SERVICE_CIDR, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const svc = (name: string, ip: string, port: number) => makeService('ns1', name, { clusterIP: ip, ports: [{ name: `p${port}`, port }] });
/** With session affinity: generation B (the default) writes endpoint chains only then. */
const stickySvc = (name: string, ip: string, port: number) =>
  makeService('ns1', name, { clusterIP: ip, ports: [{ name: `p${port}`, port }], sessionAffinity: 'ClientIP' });
const eps = (name: string, port: number, ips: string[]) =>
  makeEndpointSlice('ns1', name, `${name}-1`, { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: `p${port}`, port, protocol: 'TCP' }] });

/** A FakeNft whose next runs can be made to fail, as a refused transaction. */
class FlakyNft extends FakeNft {
  failNext: ((text: string) => boolean) | null = null;
  failListing = false;
  /** Run once by the next listing after it has read the table, as a sync landing while nft lists. */
  duringListing: (() => Promise<unknown>) | null = null;
  /** Whether each listing asked for the session (undefined: the default, through it). */
  readonly listedVia: (boolean | undefined)[] = [];
  override async listNames(family: NftFamily, options?: ListNamesOptions): Promise<LiveNames | null> {
    this.listedVia.push(options?.session);
    if (this.failListing) throw new Error('netlink: Error: cache initialization failed: Interrupted system call');
    const names = await super.listNames(family);
    const during = this.duringListing;
    this.duringListing = null;
    await during?.();
    return names;
  }
  override async run(text: string): Promise<void> {
    if (this.failNext?.(text)) {
      this.failNext = null;
      throw new Error('Could not process rule: No such file or directory');
    }
    return super.run(text);
  }
}

function setup(
  families: IPFamily[] = ['IPv4'],
  nodePortAddresses?: string[],
  deps: { cleanupNft?: (nft: FakeNft) => { run(text: string): Promise<void> }; generation?: NftGeneration } = {},
) {
  const nft = new FlakyNft();
  const clock = new ManualClock(1_000_000);
  const render = upstreamOptions('IPv4', {
    ...(nodePortAddresses ? { nodePortAddresses } : {}),
    ...(deps.generation ? { generation: deps.generation } : {}),
  });
  const cleanupNft = deps.cleanupNft ? { cleanupNft: deps.cleanupNft(nft) } : {};
  const mode = new NftablesMode({ families, render, monitorPeriodMs: 1000 }, { nft, ...cleanupNft, clock, logger: silentLogger() });
  const services = new Map<string, unknown>([['a', svc('a', '172.30.0.41', 80)]]);
  const slices = new Map<string, unknown>([['a', eps('a', 80, ['10.0.1.1'])]]);
  const serviceCIDRs: unknown[] = [UPSTREAM_SERVICE_CIDR];
  const snapshot = (): Snapshot => upstreamSnapshot('IPv4', [...services.values()], [...slices.values()], serviceCIDRs);
  const ctx = (periodic = false): SyncContext => ({ periodic, previous: null });
  const sync = (periodic = false) => mode.sync(snapshot(), ctx(periodic));
  const converged = async () => {
    const d = diffTables(tableOf(mode.lastRender('IPv4')!), await nft.list('ip'));
    return isEmptyDiff({ ...d, extraChains: [] });
  };
  return { nft, clock, mode, services, slices, serviceCIDRs, sync, converged };
}

describe('NftablesMode (upstream syncProxyRules)', () => {
  // Adding an endpoint: B (the default) rewrites the service chain's one DNAT rule (add + flush + rule = 3); A (upstream
  // v1.33-1.35) its service chain and the new endpoint chain, 2 rules each (8; README: upstream's TestSyncProxyRulesRepeated).
  it.each([
    ['B', 3],
    ['A', 8],
  ] as const)(
    'cold-starts a missing table, then sends only the delta of an endpoint change, and nothing when nothing changed (generation %s)',
    async (generation, written) => {
      const t = setup(['IPv4'], undefined, { generation });
      const first = await t.sync();
      expect(first.full).toBe(true);
      expect(await t.converged()).toBe(true);
      expect(first.objects.get('kube-proxy')).toBeGreaterThan(20);

      const runs = t.nft.history.length;
      for (const periodic of [false, true]) {
        const r = await t.sync(periodic);
        expect(r).toMatchObject({ full: false, bytes: 0 });
        expect(r.written.get('kube-proxy')).toBe(0);
      }
      expect(t.nft.history.length).toBe(runs);

      t.slices.set('a', eps('a', 80, ['10.0.1.1', '10.0.1.2']));
      const r = await t.sync();
      expect(r.full).toBe(false);
      const text = t.nft.history.at(-1)!;
      expect(text).toContain('10.0.1.2');
      expect(text).not.toMatch(/add table|cluster-ips-check|masquerading/);
      expect(r.written.get('kube-proxy')).toBe(written);
      expect(await t.converged()).toBe(true);
    },
  );

  it('rewrites cluster-ips-check alone, in a partial sync, when the ServiceCIDRs change (upstream: at the next full sync)', async () => {
    const t = setup();
    await t.sync();
    const rule = async () => (await t.nft.list('ip'))!.chains.find((c) => c.name === 'cluster-ips-check')!.rules.filter((r) => r.includes('drop'));
    expect(await rule()).toEqual(['ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"']);

    t.serviceCIDRs.push(makeServiceCIDR('extra', ['10.200.0.0/16']));
    const added = await t.sync();
    expect(added.full).toBe(false);
    const text = t.nft.history.at(-1)!;
    expect(text).toMatch(/flush chain ip kube-proxy cluster-ips-check/);
    expect(
      text
        .split('\n')
        .filter((l) => l.startsWith('add rule'))
        .every((l) => l.includes(' cluster-ips-check ')),
    ).toBe(true);
    expect(await rule()).toEqual(['ip daddr { 10.200.0.0/16, 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"']);
    expect(await t.converged()).toBe(true);

    t.serviceCIDRs.length = 0;
    expect((await t.sync()).full).toBe(false);
    expect(await rule()).toEqual([]);
    expect(await t.converged()).toBe(true);
  });

  it('flushes a deleted service port chains at once and deletes them at least 1 s later (upstream staleChains, kernels < 6.2)', async () => {
    const t = setup();
    t.services.set('b', svc('b', '172.30.0.42', 8080));
    t.slices.set('b', eps('b', 8080, ['10.0.2.1']));
    await t.sync();
    // Generation B: the service chain alone, its one DNAT rule (no endpoint chain without affinity).
    const chainsOfB = async () => (await t.nft.list('ip'))!.chains.filter((c) => c.name.includes('ns1/b/')).map((c) => c.rules.length);
    expect(await chainsOfB()).toEqual([1]);

    t.services.delete('b');
    t.slices.delete('b');
    t.clock.advance(100);
    await t.sync();
    expect(await chainsOfB()).toEqual([0]);
    t.clock.advance(500);
    await t.sync(true);
    expect(await chainsOfB()).toEqual([0]);
    t.clock.advance(500);
    const r = await t.sync(true);
    expect(await chainsOfB()).toEqual([]);
    expect(r.full).toBe(false);
    expect(t.nft.history.at(-1)).toMatch(/^delete chain ip kube-proxy .*ns1\/b\//m);
  });

  it('makes the sync after a refused transaction a full one (upstream needFullSync)', async () => {
    const t = setup();
    await t.sync();
    t.slices.set('a', eps('a', 80, ['10.0.1.3']));
    t.nft.failNext = () => true;
    const err = await t.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect(err).toMatchObject({ family: 'IPv4', full: false });
    const r = await t.sync();
    expect(r.full).toBe(true);
    expect(await t.converged()).toBe(true);
  });

  it('fails a full sync whose name listing fails, writing nothing, and syncs fully next (upstream syncProxyRules ListElements error)', async () => {
    const t = setup();
    await t.sync();
    t.clock.advance(FULL_SYNC_PERIOD_MS);
    t.slices.set('a', eps('a', 80, ['10.0.1.4']));
    t.nft.failListing = true;
    const runs = t.nft.history.length;
    await expect(t.sync()).rejects.toThrow(/cache initialization failed/);
    expect(t.nft.history.length).toBe(runs);
    const live = JSON.stringify(await t.nft.list('ip')); // the old rules stay; the new endpoint is not programmed yet
    expect(live).toContain('10.0.1.1');
    expect(live).not.toContain('10.0.1.4');
    t.nft.failListing = false;
    const r = await t.sync();
    expect(r.full).toBe(true);
    expect(await t.converged()).toBe(true);
  });

  it('reports a failed stale-chain deletion as a cleanup failure of the next sync, which is full (upstream cleanup_failures_total)', async () => {
    const t = setup();
    t.services.set('b', svc('b', '172.30.0.42', 8080));
    t.slices.set('b', eps('b', 8080, ['10.0.2.1']));
    await t.sync();
    t.services.delete('b');
    t.slices.delete('b');
    await t.sync();
    t.clock.advance(1000);
    t.nft.failNext = (text) => text.startsWith('delete chain');
    const r = await t.sync(true);
    // The deletion runs beside the syncs: this sync is over before it is.
    expect(r.failures).toEqual([]);
    await t.mode.deletionsDone();
    t.clock.advance(1000);
    const next = await t.sync(true);
    expect(next.failures).toEqual([
      expect.objectContaining({ stage: 'cleanup', message: expect.stringMatching(/cannot delete stale chains .*ns1\/b\//) }),
    ]);
    expect(next.full).toBe(true);
    t.clock.advance(1000);
    expect((await t.sync(true)).full).toBe(false);
    await t.mode.deletionsDone();
    expect((await t.nft.list('ip'))!.chains.some((c) => c.name.includes('ns1/b/'))).toBe(false);
  });

  it('syncs fully once an hour even when nothing changed (upstream FullSyncPeriod)', async () => {
    const t = setup();
    await t.sync();
    t.clock.advance(FULL_SYNC_PERIOD_MS - 1);
    expect((await t.sync(true)).full).toBe(false);
    t.clock.advance(1);
    expect((await t.sync(true)).full).toBe(true);
  });

  it('finds nothing missing with match-all NodePorts, where nodeport-ips is deleted on purpose (upstream setupNFTables)', async () => {
    const t = setup(['IPv4'], ['0.0.0.0/0']);
    await t.sync();
    expect((await t.nft.list('ip'))!.sets.map((s) => s.name)).not.toContain('nodeport-ips');
    expect(await t.mode.damage('IPv4')).toEqual([]);
  });

  it.each([
    ['a deleted table', (nft: FakeNft) => nft.deleteTable('ip'), 'table', 'table ip kube-proxy is gone: changed from outside; resyncing everything'],
    [
      'a deleted base chain',
      (nft: FakeNft) => nft.run('delete chain ip kube-proxy filter-input\n'),
      'rules',
      'missing from table ip kube-proxy: filter-input: changed from outside; resyncing everything',
    ],
    [
      'a base chain re-created at another priority (upstream setupNFTables re-creates them on its first sync only)',
      (nft: FakeNft) =>
        nft.run(
          'flush chain ip kube-proxy nat-prerouting\ndelete chain ip kube-proxy nat-prerouting\n' +
            'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority 50 ; }\n',
        ),
      'rules',
      'base chains changed in table ip kube-proxy: nat-prerouting (type nat hook prerouting priority 50 policy accept; ' +
        'written: type nat hook prerouting priority -100 policy accept): changed from outside; resyncing everything',
    ],
  ])('monitor() notices %s, reports it, and the forced full sync repairs it', async (_what, damage, kind, message) => {
    const t = setup();
    let resyncs = 0;
    const found: OutsideChange[] = [];
    // As the agent answers it (proxier.requestFullSync).
    const stop = t.mode.monitor((c) => (resyncs++, found.push(c), t.mode.requestFullSync()));
    await t.sync();
    t.clock.advance(1000);
    await new Promise((r) => setTimeout(r, 0));
    expect(resyncs).toBe(0);
    await damage(t.nft);
    t.clock.advance(1000);
    await new Promise((r) => setTimeout(r, 0));
    expect(resyncs).toBe(1);
    expect(found).toEqual([{ family: 'IPv4', kind, message }]);
    stop();
    expect(await t.converged()).toBe(false);
    const r = await t.sync();
    expect(r.full).toBe(true);
    expect(await t.converged()).toBe(true);
    expect(await t.mode.damage('IPv4')).toEqual([]);
  });

  it('re-creates the base chains in the full sync after a refused one: a base chain at another priority refuses every `add chain` (upstream: until a restart)', async () => {
    const t = setup();
    await t.sync();
    await t.nft.run('delete chain ip kube-proxy nat-output\nadd chain ip kube-proxy nat-output { type nat hook output priority 10 ; }\n');
    t.clock.advance(FULL_SYNC_PERIOD_MS);
    const err = await t.sync(true).catch((e: unknown) => e);
    expect(err).toMatchObject({
      full: true,
      message: expect.stringMatching(/add chain ip kube-proxy nat-output \{ type nat hook output priority -100/),
    });
    const r = await t.sync(true);
    expect(r.full).toBe(true);
    expect(await t.converged()).toBe(true);
    expect((await t.nft.listNames('ip'))!.baseChains).toContainEqual({
      name: 'nat-output',
      type: 'nat',
      hook: 'output',
      priority: -100,
      policy: 'accept',
    });
    // Once: the next full sync adds them as they are.
    t.mode.requestFullSync();
    await t.sync(true);
    expect(t.nft.history.at(-1)).not.toContain('delete chain ip kube-proxy nat-output');
  });

  it('looks again when a sync lands during its listing: a periodic sync every period cannot put the repair off by periods', async () => {
    const t = setup();
    let resyncs = 0;
    const stop = t.mode.monitor(() => resyncs++);
    await t.sync();
    t.nft.deleteTable('ip');
    // The sync period's no-op sync runs while the check lists (the same period, so it keeps meeting the check).
    let raced = 0;
    t.nft.duringListing = () => (raced++, t.sync(true));
    t.clock.advance(1000);
    await t.mode.deletionsDone();
    for (let i = 0; i < 5 && resyncs === 0; i++) await new Promise((r) => setTimeout(r, 0));
    expect(raced).toBe(1);
    expect(resyncs).toBe(1);
    // Three syncs in a row during the listings: the check leaves the table to the next period, as it answers null.
    const again = async (): Promise<unknown> => ((t.nft.duringListing = again), t.sync(true));
    t.nft.duringListing = again;
    expect(await t.mode.damage('IPv4')).toBeNull();
    t.nft.duringListing = null;
    expect(await t.mode.damage('IPv4')).toEqual(['table']);
    stop();
  });

  it("lists a full sync's names through the session, the damage check's beside it (an event's transaction must not queue behind it)", async () => {
    const t = setup();
    await t.sync();
    t.mode.requestFullSync();
    await t.sync();
    expect(t.nft.listedVia).toEqual([undefined, undefined]);
    expect(await t.mode.damage('IPv4')).toEqual([]);
    expect(t.nft.listedVia).toEqual([undefined, undefined, false]);
  });
});

/** Deletions that wait at a gate before they reach nft, as a slow deletion in a process of its own does. */
function gatedDeletions() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const texts: string[] = [];
  const runner = (nft: FakeNft) => ({
    async run(text: string) {
      texts.push(text);
      await gate;
      await nft.run(text);
    },
  });
  return { runner, texts, open: () => open() };
}

/** A promise, and whether it has settled yet. */
function watched<T>(p: Promise<T>): { readonly promise: Promise<T>; done: boolean } {
  const w = { promise: p, done: false };
  w.promise = p.then((v) => ((w.done = true), v));
  return w;
}

/** Lets everything that can run without the gate run (20 ms). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('NftablesMode: stale chains are deleted beside the syncs', () => {
  /**
   * a (with session affinity, so that generation B writes endpoint chains) with endpoints .1 and .2, then .1 gone, then
   * a quiet sync a second later: .1's chain is being deleted (held at the gate).
   */
  async function deleting() {
    const g = gatedDeletions();
    const t = setup(['IPv4'], undefined, { cleanupNft: g.runner });
    t.services.set('a', stickySvc('a', '172.30.0.41', 80));
    t.slices.set('a', eps('a', 80, ['10.0.1.1', '10.0.1.2']));
    await t.sync();
    t.slices.set('a', eps('a', 80, ['10.0.1.2']));
    await t.sync();
    t.clock.advance(1000);
    const quiet = await t.sync(true);
    expect(quiet.failures).toEqual([]);
    expect(g.texts).toEqual([expect.stringMatching(/^delete chain ip kube-proxy endpoint-\S+__10\.0\.1\.1\/80\n$/)]);
    const chainOf = async (ip: string) => (await t.nft.list('ip'))!.chains.find((c) => c.name.endsWith(`__${ip}/80`)) ?? null;
    expect(await chainOf('10.0.1.1')).not.toBeNull(); // still at the gate
    return { ...t, g, chainOf };
  }

  it('does not hold up the next change: its rules are in while the deletion still runs', async () => {
    const t = await deleting();
    t.slices.set('a', eps('a', 80, ['10.0.1.2', '10.0.1.3']));
    const r = await t.sync();
    expect(r.full).toBe(false);
    expect(await t.converged()).toBe(true);
    expect((await t.chainOf('10.0.1.3'))!.rules.join('\n')).toContain('dnat to 10.0.1.3:80');
    expect(await t.chainOf('10.0.1.1')).not.toBeNull();
    t.g.open();
    await t.mode.deletionsDone();
    expect(await t.chainOf('10.0.1.1')).toBeNull();
    expect(await t.converged()).toBe(true);
  });

  it('waits for it before writing one of its chains again (an endpoint back within seconds), then writes the chain anew', async () => {
    const t = await deleting();
    const runs = t.nft.history.length;
    t.slices.set('a', eps('a', 80, ['10.0.1.1', '10.0.1.2']));
    const sync = watched(t.sync());
    await settle();
    expect(sync.done).toBe(false);
    expect(t.nft.history.length).toBe(runs);
    t.g.open();
    expect((await sync.promise).full).toBe(false);
    // The deletion went first, then the transaction that adds the chain back.
    expect(t.nft.history.slice(runs).map((x) => x.split('\n')[0])).toEqual([
      expect.stringMatching(/^delete chain .*__10\.0\.1\.1\/80$/),
      expect.stringMatching(/^add chain /),
    ]);
    expect((await t.chainOf('10.0.1.1'))!.rules.join('\n')).toContain('dnat to 10.0.1.1:80');
    expect(await t.converged()).toBe(true);
  });

  it('lets a full sync list the table only once it has ended, so the listing does not find its chains', async () => {
    const t = await deleting();
    const listings = t.nft.listedVia.length;
    t.mode.requestFullSync();
    const sync = watched(t.sync());
    await settle();
    expect(sync.done).toBe(false);
    expect(t.nft.listedVia.length).toBe(listings);
    t.g.open();
    const r = await sync.promise;
    expect(r.full).toBe(true);
    expect(r.failures).toEqual([]);
    expect([...t.mode.lastPlan('IPv4')!.next.stale.keys()]).toEqual([]);
    expect(await t.chainOf('10.0.1.1')).toBeNull();
    expect(await t.converged()).toBe(true);
  });

  it('is waited for by close(), which ends nft only after it', async () => {
    const t = await deleting();
    const close = watched(t.mode.close());
    await settle();
    expect(close.done).toBe(false);
    t.g.open();
    await close.promise;
    expect(await t.chainOf('10.0.1.1')).toBeNull();
  });
});

describe('NftablesMode after a restart (not upstream epChainSkipUpdate)', () => {
  it('writes every endpoint chain it finds: one the old process flushed as stale comes back with its rules when its endpoint does', async () => {
    const nft = new FakeNft();
    const clock = new ManualClock(1_000_000);
    const start = () => new NftablesMode({ families: ['IPv4'], render: upstreamOptions('IPv4') }, { nft, clock, logger: silentLogger() });
    // With session affinity: generation B (the default) writes endpoint chains only then.
    const sync = (mode: NftablesMode, ips: string[]) =>
      mode.sync(upstreamSnapshot('IPv4', [stickySvc('a', '172.30.0.41', 80)], [eps('a', 80, ips)]), { periodic: false, previous: null });
    const before = start();
    await sync(before, ['10.0.1.1', '10.0.1.2']);
    // 10.0.1.2 goes (its readiness flapped, say): its chain is flushed now and deleted at least 1 s later...
    clock.advance(100);
    await sync(before, ['10.0.1.1']);
    // ...but the process stops first, and the chain stays, empty.
    await before.close();
    const chain = (await nft.list('ip'))!.chains.find((c) => c.name.endsWith('__10.0.1.2/80'))!;
    expect(chain.rules).toEqual([]);

    // The endpoint is back when the new process starts. upstream's epChainSkipUpdate would keep the empty chain (the
    // listing shows its name): every other new connection to the service would find no DNAT until the hourly full sync.
    const after = start();
    const runs = nft.history.length;
    clock.advance(100);
    expect((await sync(after, ['10.0.1.1', '10.0.1.2'])).full).toBe(true);
    expect(nft.history.slice(runs).join('\n')).toMatch(/flush chain ip kube-proxy endpoint-\S+__10\.0\.1\.1\/80/);
    expect((await nft.list('ip'))!.chains.find((c) => c.name === chain.name)!.rules).toEqual([
      `update @affinity-${chain.name.slice('endpoint-'.length)} { ip saddr }`,
      'meta l4proto tcp dnat to 10.0.1.2:80',
    ]);
    const d = diffTables(tableOf(after.lastRender('IPv4')!), await nft.list('ip'));
    expect(isEmptyDiff(d), JSON.stringify(d)).toBe(true);
  });
});

describe.each(['A', 'B'] as const)('NftablesMode over the fake nft, generation %s', (generation) => {
  /** Endpoints of service `a` on port 80: `local` on this node, `remote` elsewhere. */
  const slice = (local: string[], remote: string[]) =>
    makeEndpointSlice('ns1', 'a', 'a-1', {
      endpoints: [...local.map((ip) => ({ ip, nodeName: TEST_NODE })), ...remote.map((ip) => ({ ip, nodeName: 'other-node' }))],
      ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
    });

  it('converges over a cold start, partial syncs of a local endpoint coming and going, a refused transaction and the hourly full sync', async () => {
    const t = setup(['IPv4'], undefined, { generation });
    const hairpin = async () => (await t.nft.list('ip'))!.sets.find((s) => s.name === 'hairpin-connections')?.elements?.map((e) => e.key);
    /** A periodic sync 15 s on: what a sync leaves to the cleanup (stale chains) is done. */
    const settle = async () => {
      t.clock.advance(15_000);
      expect((await t.sync(true)).full).toBe(false);
      expect(await t.converged()).toBe(true);
    };
    t.slices.set('a', slice([], ['10.0.2.1']));
    expect((await t.sync()).full).toBe(true);
    expect(await t.converged()).toBe(true);
    expect(await hairpin()).toEqual(generation === 'B' ? [] : undefined);

    t.slices.set('a', slice(['10.0.1.1'], ['10.0.2.1']));
    t.clock.advance(100);
    expect((await t.sync()).full).toBe(false);
    expect(t.nft.history.at(-1)).not.toMatch(/add table|masquerading/);
    if (generation === 'B') expect(t.nft.history.at(-1)).toContain('dnat ip addr . port to numgen random mod 2 map');
    await settle();
    expect(await hairpin()).toEqual(generation === 'B' ? ['10.0.1.1 . 10.0.1.1 . tcp . 80'] : undefined);

    t.slices.set('a', slice([], ['10.0.2.1']));
    t.clock.advance(100);
    expect((await t.sync()).full).toBe(false);
    await settle();
    expect(await hairpin()).toEqual(generation === 'B' ? [] : undefined);

    t.slices.set('a', slice(['10.0.1.2'], []));
    t.nft.failNext = () => true;
    await expect(t.sync()).rejects.toBeInstanceOf(ApplyError);
    expect((await t.sync()).full).toBe(true);
    expect(await t.converged()).toBe(true);
    expect(await hairpin()).toEqual(generation === 'B' ? ['10.0.1.2 . 10.0.1.2 . tcp . 80'] : undefined);

    t.clock.advance(FULL_SYNC_PERIOD_MS);
    expect((await t.sync(true)).full).toBe(true);
    expect(await t.converged()).toBe(true);
  });
});
