import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { NftError } from './errors.ts';
import { FakeNft } from './fake-nft.ts';
import type { NftFamily } from './model.ts';
import type { NftRenderOptions } from './render.ts';
import type { Snapshot } from '../proxier/types.ts';
import { renderNftables, tableOf } from './render.ts';
import { planFullSync } from './full-sync.ts';
import { planColdStart } from './cold-start.ts';
import { firstLocalEndpoint, shapesOptions, shapesSnapshot, withoutEndpoint } from './shapes.case.ts';
import { operationLines, parseScript } from './script.ts';
import { SyncDriver } from './sync.case.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const ports = [{ name: 'p80', port: 80, nodePort: 3001 }];
const lb = (o: Record<string, unknown> = {}) =>
  makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports, ingress: [{ ip: '1.2.3.4' }], ...o });
const slice = (ips: string[], nodeName?: string) =>
  makeEndpointSlice('ns1', 'svc1', 'svc1-1', {
    endpoints: ips.map((ip) => ({ ip, ...(nodeName ? { nodeName } : {}) })),
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  });

async function converged(fake: FakeNft, driver: SyncDriver): Promise<void> {
  const d = diffTables(tableOf(driver.lastRender!), await fake.list('ip'));
  expect(isEmptyDiff({ ...d, extraChains: d.extraChains.filter((c) => !driver.applied!.stale.has(c)) }), JSON.stringify(d, null, 1)).toBe(true);
}

function setup(options: NftRenderOptions = upstreamOptions('IPv4')) {
  const fake = new FakeNft();
  const driver = new SyncDriver(fake, options);
  let now = 5_000;
  const sync = async (services: unknown[], slices: unknown[], o: { advance?: number; full?: boolean } = {}) => {
    now += o.advance ?? 100;
    const plan = await driver.sync(upstreamSnapshot('IPv4', services, slices), now, o.full ?? false);
    await converged(fake, driver);
    return plan;
  };
  return { fake, driver, sync };
}

const ops = (text: string) => parseScript(text).map((l) => `${l.op.verb} ${l.op.type}`);

describe('partial syncs of every kind of change', () => {
  it('re-creates affinity sets whose timeout changed, releasing them by rewriting the chains that use them', async () => {
    const { fake, sync } = setup();
    await sync([lb({ sessionAffinity: 'ClientIP', sessionAffinityTimeout: 10800 })], [slice(['10.180.0.1', '10.180.0.2'])]);
    const plan = await sync([lb({ sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 })], [slice(['10.180.0.1', '10.180.0.2'])]);
    expect(ops(plan.text).filter((o) => o.endsWith(' set'))).toEqual(['delete set', 'delete set', 'add set', 'add set']);
    expect((await fake.list('ip'))!.sets.filter((s) => s.name.startsWith('affinity-')).map((s) => s.timeout)).toEqual([600, 600]);
  });

  it('deletes affinity sets at once when affinity is switched off', async () => {
    const { fake, sync } = setup();
    await sync([lb({ sessionAffinity: 'ClientIP' })], [slice(['10.180.0.1'])]);
    const plan = await sync([lb()], [slice(['10.180.0.1'])]);
    expect(ops(plan.text)).toContain('delete set');
    expect((await fake.list('ip'))!.sets.some((s) => s.name.startsWith('affinity-'))).toBe(false);
  });

  it('moves an element to another verdict with delete + add (eTP Cluster -> Local without local endpoints)', async () => {
    const { fake, sync } = setup();
    await sync([lb()], [slice(['10.180.0.1'])]);
    const plan = await sync([lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 30000 })], [slice(['10.180.0.1'])]);
    expect(operationLines(plan.text)).toContain('add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns1/svc1:p80" : drop }');
    const local = await sync([lb({ externalTrafficPolicy: 'Local', healthCheckNodePort: 30000 })], [slice(['10.180.0.1'], TEST_NODE)]);
    expect(operationLines(local.text)).toContain('delete element ip kube-proxy no-endpoint-nodeports { tcp . 3001 }');
    expect(operationLines(local.text)).toContain('add chain ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80');
    expect(fake.dump('ip')).toContain('add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto local-ULMVA6XW-ns1/svc1/tcp/p80');
  });

  it('switches NodePorts between nodeport-ips and every local address without a full sync', async () => {
    const services = [lb()];
    const slices = [slice(['10.180.0.1'])];
    const a = setup(upstreamOptions('IPv4', { nodePortAddresses: ['primary'] }));
    await a.sync(services, slices);
    // Same fake, new options: a second driver would not know the applied state, so re-render through a fresh one on the same table.
    const b = new SyncDriver(a.fake, upstreamOptions('IPv4', { nodePortAddresses: ['0.0.0.0/0'] }));
    b.applied = a.driver.applied;
    const plan = await b.sync(upstreamSnapshot('IPv4', services, slices), 10_000);
    expect(plan.full).toBe(false);
    expect(ops(plan.text)).toContain('delete set');
    expect((await a.fake.list('ip'))!.sets.map((s) => s.name)).not.toContain('nodeport-ips');
    expect(a.fake.dump('ip')).toContain(
      'add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    );
  });

  it('keeps a ClusterIP in cluster-ips while another port of the service still uses it', async () => {
    const two = (n: number) =>
      makeService('ns1', 'svc1', {
        clusterIP: '172.30.0.41',
        ports: [
          { name: 'p80', port: 80 },
          { name: 'p81', port: 81 },
        ].slice(0, n),
      });
    const { fake, sync } = setup();
    await sync([two(2)], []);
    const plan = await sync([two(1)], []);
    expect(operationLines(plan.text).some((l) => l.startsWith('delete element ip kube-proxy cluster-ips'))).toBe(false);
    expect(fake.dump('ip')).toContain('add element ip kube-proxy cluster-ips { 172.30.0.41 }');
  });

  it('rewrites the chains that set or test the mark when the masquerade bit changes', async () => {
    const a = setup();
    await a.sync([lb()], [slice(['10.180.0.1'])]);
    const b = new SyncDriver(a.fake, upstreamOptions('IPv4', { masqueradeBit: 5 }));
    b.applied = a.driver.applied;
    const plan = await b.sync(upstreamSnapshot('IPv4', [lb()], [slice(['10.180.0.1'])]), 10_000);
    // Generation B sets the mark inline: in services (ClusterIP traffic from outside) and in the external chain.
    const lines = operationLines(plan.text);
    expect(lines).toContain(
      'add rule ip kube-proxy services ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x00000020 comment "masquerade clusterIP traffic from outside cluster"',
    );
    expect(lines).toContain('add rule ip kube-proxy masquerading mark and 0x00000020 != 0 mark set mark xor 0x00000020 masquerade fully-random');
    expect(lines).toContain('add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 mark set mark or 0x00000020 comment "masquerade"');
    expect(lines.filter((l) => l.startsWith('flush chain')).sort()).toEqual([
      'flush chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80',
      'flush chain ip kube-proxy masquerading',
      'flush chain ip kube-proxy services',
    ]);
    // 3 chains added and flushed, their 3 + 2 + 2 rules.
    expect(plan.operations).toBe(3 * 2 + 3 + 2 + 2);
  });

  it('rewrites the fixed chains when the masquerade bit changes (generation A, upstream v1.33-1.35: the mark in mark-for-masquerade)', async () => {
    const a = setup(upstreamOptions('IPv4', { generation: 'A' }));
    await a.sync([lb()], [slice(['10.180.0.1'])]);
    const b = new SyncDriver(a.fake, upstreamOptions('IPv4', { masqueradeBit: 5, generation: 'A' }));
    b.applied = a.driver.applied;
    const plan = await b.sync(upstreamSnapshot('IPv4', [lb()], [slice(['10.180.0.1'])]), 10_000);
    expect(operationLines(plan.text)).toContain('add rule ip kube-proxy mark-for-masquerade mark set mark or 0x00000020');
    expect(plan.operations).toBe(2 + 1 + 2 + 3);
  });
});

describe('full syncs over what is already there', () => {
  // Generation B (the default) over a table with A's mark-for-masquerade; A (upstream v1.33-1.35) over one with B's set.
  for (const generation of ['B', 'A'] as const) {
    const other = generation === 'B' ? 'mark-for-masquerade' : 'hairpin-connections';
    it(`flushes chains and deletes sets nobody wants, deleting the chains a second later (older rulesets included; generation ${generation} over ${other})`, async () => {
      const fake = new FakeNft();
      // A table left by an older release: a generation A' base chain, the other generation's fixed object, a vanished service.
      await fake.run(
        [
          'add table ip kube-proxy',
          'add chain ip kube-proxy firewall-check',
          'add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }',
          'add rule ip kube-proxy filter-prerouting ct state new jump firewall-check',
          ...(generation === 'B'
            ? ['add chain ip kube-proxy mark-for-masquerade', 'add rule ip kube-proxy mark-for-masquerade mark set mark or 0x00004000']
            : ['add set ip kube-proxy hairpin-connections { type ipv4_addr . ipv4_addr . inet_proto . inet_service ; }']),
          'add set ip kube-proxy affinity-XXXXXXXX-ns9/gone/tcp/p80__10.9.9.9/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }',
          'add chain ip kube-proxy service-XXXXXXXX-ns9/gone/tcp/p80',
          'add rule ip kube-proxy service-XXXXXXXX-ns9/gone/tcp/p80 ip saddr @affinity-XXXXXXXX-ns9/gone/tcp/p80__10.9.9.9/80 drop',
        ].join('\n') + '\n',
      );
      const options = upstreamOptions('IPv4', { generation });
      const driver = new SyncDriver(fake, options);
      driver.applied = null;
      const snapshot = upstreamSnapshot('IPv4', [lb()], [slice(['10.180.0.1'])]);
      // First sync of this process: nothing applied yet, but the table exists; list it as the agent will.
      const live = (await fake.list('ip'))!;
      const plan = planFullSync(renderNftables(snapshot, options), {
        now: 0,
        live: { chains: live.chains.map((c) => c.name), sets: live.sets.map((s) => ({ name: s.name, kind: s.kind })) },
        recreateBaseChains: true,
      });
      await fake.run(plan.text);
      const stale = ['filter-prerouting', ...(generation === 'B' ? ['mark-for-masquerade'] : []), 'service-XXXXXXXX-ns9/gone/tcp/p80'];
      expect([...plan.next.stale.keys()].sort()).toEqual(stale);
      const after = (await fake.list('ip'))!;
      expect(after.sets.map((s) => s.name)).not.toContain('affinity-XXXXXXXX-ns9/gone/tcp/p80__10.9.9.9/80');
      if (generation === 'A') expect(after.sets.map((s) => s.name)).not.toContain('hairpin-connections');
      else expect(after.chains.find((c) => c.name === 'mark-for-masquerade')!.rules).toEqual([]);
      expect(after.chains.find((c) => c.name === 'filter-prerouting')!.rules).toEqual([]);
      driver.applied = plan.next;
      const later = await driver.sync(snapshot, 1000);
      expect(later.cleanupChains).toEqual(stale);
      const chains = (await fake.list('ip'))!.chains.map((c) => c.name);
      expect(chains).not.toContain('filter-prerouting');
      if (generation === 'B') expect(chains).not.toContain('mark-for-masquerade');
    });
  }

  it('recovers with a full sync after the table was deleted behind its back (the partial one fails, nothing half-applied)', async () => {
    const { fake, driver, sync } = setup();
    await sync([lb()], [slice(['10.180.0.1'])]);
    await fake.deleteTable('ip');
    const err = await sync([lb()], [slice(['10.180.0.1', '10.180.0.2'])]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect((err as NftError).kind).toBe('not-found');
    expect(await fake.list('ip')).toBeNull();
    const plan = await sync([lb()], [slice(['10.180.0.1', '10.180.0.2'])], { full: true });
    expect(plan.full).toBe(true);
    expect(driver.applied!.services.size).toBe(1);
  });

  it('is repeatable: a second full sync over its own table succeeds and changes nothing', async () => {
    const { fake, sync } = setup();
    await sync([lb({ sessionAffinity: 'ClientIP' })], [slice(['10.180.0.1'])]);
    const before = fake.dump('ip');
    await sync([lb({ sessionAffinity: 'ClientIP' })], [slice(['10.180.0.1'])], { full: true });
    expect(fake.dump('ip')).toBe(before);
  });
});

describe('cold start (cold-start.ts)', () => {
  it('builds, in chunks of whole service ports, exactly the table one full sync builds (both generations)', async () => {
    for (const [family, generation] of [
      ['IPv4', 'A'],
      ['IPv6', 'A'],
      ['IPv4', 'B'],
      ['IPv6', 'B'],
    ] as const) {
      const render = renderNftables(shapesSnapshot(family), { ...shapesOptions(family), generation });
      const plan = planColdStart(render, { servicesPerTransaction: 2 });
      expect(plan.more.length).toBe(Math.ceil(render.services.length / 2));
      const chunked = new FakeNft();
      for (const t of [plan.text, ...plan.more]) await chunked.run(t);
      const whole = new FakeNft();
      await whole.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: false }).text);
      const nf = family === 'IPv4' ? 'ip' : 'ip6';
      expect(chunked.dump(nf)).toBe(whole.dump(nf));
      expect(isEmptyDiff(diffTables(tableOf(render), await chunked.list(nf)))).toBe(true);
    }
  });

  it('makes each chunk when the writer reaches it, and counts every operation once (upstream NumOperations)', () => {
    const render = renderNftables(shapesSnapshot('IPv4'), shapesOptions('IPv4'));
    const plan = planColdStart(render, { servicesPerTransaction: 2 });
    const setupOnly = plan.operations; // nothing of the chunks made yet
    const it = plan.more[Symbol.iterator]();
    const firstChunk = it.next().value as string;
    expect(firstChunk).toMatch(/^add /m);
    expect(plan.operations).toBeGreaterThan(setupOnly);
    expect(plan.operations).toBeLessThan(planFullSync(render, { now: 0, live: null, recreateBaseChains: false }).operations);
    const texts = [...plan.more];
    const total = plan.operations;
    expect(texts[0]).toBe(firstChunk);
    expect([...plan.more]).toEqual(texts); // a second pass makes the same texts and the same count
    expect(plan.operations).toBe(total);
  });
});

/**
 * Every rule shape of both generations (upstream's A, and B of v1.36+) through the fake nft: a full sync, then
 * partial syncs of a local endpoint going (B: its hairpin-connections element goes) and coming back, a service port
 * going, every one going and coming back, then a full sync over it all. After each step everything the render wants
 * is in the table; after a quiet sync 15 s later (stale chains, and whatever else a sync leaves to the cleanup, are
 * gone) the table is exactly the render.
 */
describe.each(['A', 'B'] as const)('every rule shape through full and partial syncs on the fake nft, generation %s', (generation) => {
  async function expectApplied(fake: FakeNft, driver: SyncDriver, nf: NftFamily, exact: boolean): Promise<void> {
    const d = diffTables(tableOf(driver.lastRender!), await fake.list(nf));
    const why = JSON.stringify(d, null, 1);
    expect(
      d.extraChains.filter((c) => !driver.applied!.stale.has(c)),
      why,
    ).toEqual([]);
    if (exact) expect(d.extraChains, why).toEqual([]);
    const { extraChains: _, extraCounters, sets, ...rest } = d;
    // A stale endpoint chain keeps its counter (--traffic-counters) until both are deleted.
    const counters = extraCounters.filter((c) => exact || !driver.applied!.stale.has(c));
    // Extra elements only in hairpin-connections, and only before the quiet sync.
    const setProblems = sets.filter((s) => exact || s.set !== 'hairpin-connections' || s.missing.length + s.changed.length > 0 || s.declaration);
    expect(isEmptyDiff({ ...rest, extraChains: [], extraCounters: counters, sets: setProblems }), why).toBe(true);
  }

  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const [what, over] of [
      ['', {}],
      [' with masquerade-all', { masqueradeAll: true }],
      [' with --traffic-counters', { trafficCounters: true }],
    ] as const) {
      it(`${family}${what}`, async () => {
        const nf = family === 'IPv4' ? 'ip' : 'ip6';
        const fake = new FakeNft();
        const driver = new SyncDriver(fake, { ...shapesOptions(family), generation, ...over });
        const all = shapesSnapshot(family);
        const { index, endpoint } = firstLocalEndpoint(all);
        const none: Snapshot = { ...all, services: [] };
        const steps: [string, Snapshot, boolean][] = [
          ['full sync', all, true],
          ['a local endpoint goes', withoutEndpoint(all, index, endpoint), false],
          ['it comes back', all, false],
          ['a service port goes', { ...all, services: all.services.filter((_, i) => i !== index) }, false],
          ['every service port goes', none, false],
          ['they come back', all, false],
          ['full sync over it', all, true],
        ];
        let now = 5_000;
        for (const [step, snapshot, full] of steps) {
          const plan = await driver.sync(snapshot, (now += 100), full);
          expect(plan.full, step).toBe(full);
          await expectApplied(fake, driver, nf, false);
          await driver.sync(snapshot, (now += 15_000));
          await expectApplied(fake, driver, nf, true);
        }
        if (generation === 'B') {
          const kinds = fake.history.join('\n');
          expect(kinds).toContain('hairpin-connections');
          // --traffic-counters keeps the endpoint chains (a counter each), so no DNAT map.
          if (!('trafficCounters' in over)) expect(kinds).toMatch(/dnat ip6? addr \. port to numgen random mod \d+ map/);
        }
      });
    }
  }
});
