import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { FakeNft } from './fake-nft.ts';
import { tableOf } from './render.ts';
import { parseScript } from './script.ts';
import { SyncDriver } from './sync.case.ts';
import { STALE_CHAIN_BATCH_MS, STALE_CHAIN_DELAY_MS } from './sync-state.ts';
import { countObjects } from './table-check.ts';
import { BASE_RULES, sortedDump, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const svc = (ns: string, name: string, ip: string, port: number) => makeService(ns, name, { clusterIP: ip, ports: [{ name: `p${port}`, port }] });
const eps = (ns: string, name: string, port: number, ips: string[]) =>
  makeEndpointSlice(ns, name, `${name}-1`, { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: `p${port}`, port, protocol: 'TCP' }] });

/** The endpoint address an endpoint chain's name ends with (`endpoint-HASH-ns/svc/tcp/p80__10.0.1.1/80`). */
const endpointIP = (chain: string): string => chain.split('__')[1]!.split('/')[0]!;

/** The live table equals the render, but for chains flushed and waiting for deletion (and, with counters, their counters). */
async function expectConverged(fake: FakeNft, driver: SyncDriver): Promise<void> {
  const d = diffTables(tableOf(driver.lastRender!), await fake.list('ip'));
  const stale = [...driver.applied!.stale.keys()].sort();
  expect([...d.extraChains].sort()).toEqual(stale);
  expect([...d.extraCounters].sort()).toEqual(driver.lastRender!.counters ? stale.filter((c) => c.startsWith('endpoint-')) : []);
  expect(isEmptyDiff({ ...d, extraChains: [], extraCounters: [] }), JSON.stringify(d, null, 1)).toBe(true);
  // The report's object count, taken from the applied element store, is the table's.
  const t = tableOf(driver.lastRender!);
  const whole = t.chains.reduce((n, c) => n + 1 + c.rules.length, 0) + t.sets.reduce((n, s) => n + 1 + (s.elements?.length ?? 0), 0);
  expect(countObjects(driver.lastRender!, driver.applied!.elements)).toBe(whole);
}

describe('partial syncs (upstream TestSyncProxyRulesRepeated)', () => {
  // Upstream's dumps and operation counts at 81810de6 are generation A's (upstream v1.33-1.35): generation A pinned.
  it("sends only what changed, with upstream's operation counts (generation A, upstream v1.33-1.35)", async () => {
    const fake = new FakeNft();
    const driver = new SyncDriver(fake, upstreamOptions('IPv4', { generation: 'A' }));
    const services = new Map<string, unknown>([
      ['svc1', svc('ns1', 'svc1', '172.30.0.41', 80)],
      ['svc2', svc('ns2', 'svc2', '172.30.0.42', 8080)],
    ]);
    const slices = new Map<string, unknown>([
      ['svc1', eps('ns1', 'svc1', 80, ['10.0.1.1'])],
      ['svc2', eps('ns2', 'svc2', 8080, ['10.0.2.1'])],
    ]);
    let now = 1_000_000;
    const sync = async (advance = 100) => {
      now += advance;
      const plan = await driver.sync(upstreamSnapshot('IPv4', [...services.values()], [...slices.values()]), now);
      await expectConverged(fake, driver);
      return plan;
    };

    expect((await sync()).full).toBe(true);
    expect(sortedDump(fake.dump('ip'))).toEqual(
      sortedDump(`${BASE_RULES}
        add element ip kube-proxy cluster-ips { 172.30.0.41 }
        add element ip kube-proxy cluster-ips { 172.30.0.42 }
        add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
        add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 8080 : goto service-MHHHYRWA-ns2/svc2/tcp/p8080 }
        add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
        add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 }
        add chain ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80
        add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 ip saddr 10.0.1.1 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 meta l4proto tcp dnat to 10.0.1.1:80
        add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080
        add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
        add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 numgen random mod 1 vmap { 0 : goto endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 }
        add chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080
        add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 ip saddr 10.0.2.1 jump mark-for-masquerade
        add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 meta l4proto tcp dnat to 10.0.2.1:8080`),
    );

    // Add a service and its endpoint: 2 elements, add+flush 2 chains, 2 rules each = 10.
    services.set('svc3', svc('ns3', 'svc3', '172.30.0.43', 80));
    slices.set('svc3', eps('ns3', 'svc3', 80, ['10.0.3.1']));
    expect((await sync()).operations).toBe(10);

    // Delete a service: 2 element deletes, its 2 chains flushed but not deleted = 4.
    services.delete('svc2');
    slices.delete('svc2');
    let plan = await sync();
    expect(plan.operations).toBe(4);
    expect(fake.dump('ip')).toContain('add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080\n');
    expect(fake.dump('ip')).not.toContain('add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080');

    // A second later the stale chains go, in a transaction of their own; the main one is empty.
    plan = await sync(1000);
    expect(plan.cleanupChains).toEqual(['endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080', 'service-MHHHYRWA-ns2/svc2/tcp/p8080']);
    expect(plan.operations).toBe(0);
    expect(plan.text).toBe('');
    expect(fake.dump('ip')).not.toContain('svc2');

    // A service without endpoints: its ClusterIP and a reject element = 2.
    services.set('svc4', svc('ns4', 'svc4', '172.30.0.44', 80));
    expect((await sync()).operations).toBe(2);
    expect(fake.dump('ip')).toContain(
      'add element ip kube-proxy no-endpoint-services { 172.30.0.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }',
    );

    // Its endpoints arrive: no-endpoint element out, service-ips element in, 2 chains = 10.
    slices.set('svc4', eps('ns4', 'svc4', 80, ['10.0.4.1']));
    expect((await sync()).operations).toBe(10);

    // One endpoint changes: service chain and new endpoint chain rewritten, old one flushed = 9.
    slices.set('svc3', eps('ns3', 'svc3', 80, ['10.0.3.2']));
    expect((await sync()).operations).toBe(9);

    // An endpoint is added: upstream rewrites all three chains (12); an unchanged endpoint chain is not rewritten here (8).
    // The chain the last change left stale goes with it: it has waited STALE_CHAIN_BATCH_MS (a sync that writes rules
    // deletes stale chains only then; see the next test).
    slices.set('svc3', eps('ns3', 'svc3', 80, ['10.0.3.2', '10.0.3.3']));
    plan = await sync(STALE_CHAIN_BATCH_MS);
    expect(plan.cleanupChains).toEqual(['endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80']);
    expect(plan.operations).toBe(8);
    expect(
      parseScript(plan.text)
        .filter((l) => l.op.type === 'chain' && l.op.verb === 'flush')
        .map((l) => (l.op as { name: string }).name)
        .sort(),
    ).toEqual(['endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80', 'service-4AT6LBPK-ns3/svc3/tcp/p80']);

    // The endpoints go: service-ips element out, reject element in, 3 chains flushed = 5.
    slices.set('svc3', eps('ns3', 'svc3', 80, []));
    plan = await sync();
    expect(plan.operations).toBe(5);
    expect([...driver.applied!.stale.keys()].sort()).toEqual([
      'endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80',
      'endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80',
      'service-4AT6LBPK-ns3/svc3/tcp/p80',
    ]);

    // They come back at once: the flushed chains are rewritten and stop being stale = 14.
    slices.set('svc3', eps('ns3', 'svc3', 80, ['10.0.3.2', '10.0.3.3']));
    plan = await sync(1000);
    expect(plan.cleanupChains).toEqual([]);
    expect(plan.operations).toBe(14);
    expect(driver.applied!.stale.size).toBe(0);

    // Nothing changed: nothing to send.
    plan = await sync();
    expect(plan.text).toBe('');
    expect(plan.cleanup).toBe('');
  });

  it('leaves stale chains to a sync with nothing else to write, or deletes them together once one has waited STALE_CHAIN_BATCH_MS (one nft cache load per burst, not per change)', async () => {
    const fake = new FakeNft();
    // Generation B (the default) writes endpoint chains with --traffic-counters (or session affinity, whose sets go at
    // once in a delete of their own).
    const driver = new SyncDriver(fake, upstreamOptions('IPv4', { trafficCounters: true }));
    const services = new Map<string, unknown>([['svc1', svc('ns1', 'svc1', '172.30.0.41', 80)]]);
    const slices = new Map<string, unknown>([['svc1', eps('ns1', 'svc1', 80, ['10.0.1.1'])]]);
    let now = 1_000_000;
    const sync = async (advance: number) => {
      now += advance;
      const plan = await driver.sync(upstreamSnapshot('IPv4', [...services.values()], [...slices.values()]), now);
      await expectConverged(fake, driver);
      return plan;
    };
    await sync(0);
    // A burst: the endpoint moves every 2 s; each change flushes the chain of the endpoint it replaced.
    const burst: string[] = [];
    for (let i = 2; i <= 5; i++) {
      slices.set('svc1', eps('ns1', 'svc1', 80, [`10.0.1.${i}`]));
      const plan = await sync(2 * STALE_CHAIN_DELAY_MS);
      expect(plan.operations).toBeGreaterThan(0);
      // No delete in the main transaction either: nft loads no cache for it (transaction.ts).
      expect(plan.text.split('\n').filter((l) => l.startsWith('delete '))).toEqual([]);
      expect(plan.cleanupChains, `change ${i}`).toEqual([]);
      expect(plan.cleanup).toBe('');
      burst.push(`10.0.1.${i - 1}`);
      expect([...driver.applied!.stale.keys()].map(endpointIP).sort()).toEqual(burst);
    }
    // The first of them has waited 6 s. A change when it has waited STALE_CHAIN_BATCH_MS: its sync takes every chain
    // due, in one cleanup.
    slices.set('svc1', eps('ns1', 'svc1', 80, ['10.0.1.6']));
    let plan = await sync(STALE_CHAIN_BATCH_MS - 3 * 2 * STALE_CHAIN_DELAY_MS);
    expect(plan.cleanupChains.map(endpointIP).sort()).toEqual(['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4']);
    // One transaction: each chain deleted with its counter (added first, cleanupText), a cache load for all four.
    const cleanup = plan.cleanup.trim().split('\n');
    expect(cleanup.filter((l) => l.startsWith('delete chain '))).toHaveLength(4);
    expect(cleanup.filter((l) => l.startsWith('delete counter '))).toHaveLength(4);
    expect(cleanup).toHaveLength(12);
    expect([...driver.applied!.stale.keys()].map(endpointIP)).toEqual(['10.0.1.5']);
    expect(fake.dump('ip')).not.toContain('10.0.1.1/');
    // Quiet again: the next sync has nothing else to write and deletes what has waited a second.
    plan = await sync(STALE_CHAIN_DELAY_MS - 1);
    expect(plan.cleanupChains).toEqual([]);
    plan = await sync(1);
    expect(plan.text).toBe('');
    expect(plan.cleanupChains.map(endpointIP)).toEqual(['10.0.1.5']);
    expect(driver.applied!.stale.size).toBe(0);
    expect(fake.dump('ip')).not.toContain('10.0.1.5/');
  });
});
