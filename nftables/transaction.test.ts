import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { FakeNft } from './fake-nft.ts';
import { holdsAnonymousSet, planFullSync } from './full-sync.ts';
import { renderNftables } from './render.ts';
import { operationLines, parseScript } from './script.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';
import { SyncDriver } from './sync.case.ts';
import { Transaction } from './transaction.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const affinity = { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 };
const svc = (o: Record<string, unknown> = {}) => makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }], ...o });
const slice = (ips: string[]) =>
  makeEndpointSlice('ns1', 'svc1', 'svc1-1', {
    endpoints: ips.map((ip) => ({ ip, nodeName: TEST_NODE })),
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  });

/** Commands nft 1.0.6 evaluates with its table cache alone (cache.c evaluate_cache_add: CMD_OBJ_CHAIN / CMD_OBJ_SET; flush chain needs none). */
const CHEAP = /^(add (chain|set|map) |flush chain )/;

describe('transaction text (the cache nft 1.0.6 loads depends on the commands)', () => {
  it('counts operations as knftables does: chain, flush, each rule, each element; repeated declarations are free', () => {
    const tx = new Transaction('ip', [{ name: 'aff', kind: 'set', type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeout: 600, comment: null }]);
    tx.rewriteChain({ name: 'c', base: null, comment: null, rules: ['ip saddr @aff goto d', 'update @aff { ip saddr }', 'ip saddr @aff drop'] });
    tx.addElements('nowhere', [{ key: '1.2.3.4', value: null, comment: null }]);
    expect(tx.operations).toBe(2 + 3 + 1);
    expect(
      tx
        .text()
        .split('\n')
        .filter((l) => l.startsWith('add set ip kube-proxy aff ')),
    ).toHaveLength(1);
    expect(parseScript(tx.text())).toHaveLength(1 + 1 + 1 + 1 + 3 + 1);
  });

  it('writes an endpoint change with no command that makes nft dump every chain and set (cache.c: add rule / add element / delete do)', async () => {
    const driver = new SyncDriver(new FakeNft(), upstreamOptions('IPv4'));
    await driver.sync(upstreamSnapshot('IPv4', [svc()], [slice(['10.180.0.1'])]), 1000);
    const added = await driver.sync(
      upstreamSnapshot(
        'IPv4',
        [svc(), makeService('ns2', 'svc2', { clusterIP: '172.30.0.42', ports: [{ name: 'p80', port: 80 }] })],
        [slice(['10.180.0.1'])],
      ),
      2000,
    );
    const changed = await driver.sync(upstreamSnapshot('IPv4', [svc()], [slice(['10.180.0.2'])]), 3000);
    expect(
      added.text
        .trim()
        .split('\n')
        .filter((l) => !CHEAP.test(l)),
    ).toEqual([]);
    // Removing svc2 deletes its elements: a `delete` line, which loads the cache whatever the rest looks like.
    expect(
      changed.text
        .trim()
        .split('\n')
        .filter((l) => !CHEAP.test(l)),
    ).toEqual([
      'delete element ip kube-proxy cluster-ips { 172.30.0.42 }',
      'delete element ip kube-proxy no-endpoint-services { 172.30.0.42 . tcp . 80 }',
    ]);
    // Generation B: the new endpoint is one rule of the service chain's DNAT map, and one hairpin-connections element,
    // both written in blocks; the old endpoint's element waits for the deferred cleanup (DEFERRED_ELEMENT_SETS).
    expect(operationLines(changed.text).filter((o) => o.startsWith('add rule') && o.includes(' dnat '))).toEqual([
      'add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip addr . port to numgen random mod 1 map { 0 : 10.180.0.2 . 80 }',
    ]);
    expect(operationLines(changed.text).filter((o) => o.includes(' hairpin-connections '))).toEqual([
      'add element ip kube-proxy hairpin-connections { 10.180.0.2 . 10.180.0.2 . tcp . 80 }',
    ]);
  });

  it('declares an unchanged affinity set before the rewritten chain that names it, since nft without its cache knows no set', async () => {
    const driver = new SyncDriver(new FakeNft(), upstreamOptions('IPv4'));
    await driver.sync(upstreamSnapshot('IPv4', [svc(affinity)], [slice(['10.180.0.1'])]), 1000);
    const plan = await driver.sync(upstreamSnapshot('IPv4', [svc(affinity)], [slice(['10.180.0.1', '10.180.0.2'])]), 2000);
    const lines = plan.text.trim().split('\n');
    const decl = lines.findIndex((l) => l.startsWith('add set ip kube-proxy affinity-') && l.includes('10.180.0.1/80 {'));
    const use = lines.findIndex((l) => l.startsWith('add chain ip kube-proxy service-') && l.includes(' goto endpoint-'));
    expect(decl).toBeGreaterThanOrEqual(0);
    expect(use).toBeGreaterThan(decl);
    expect(lines.filter((l) => !CHEAP.test(l))).toEqual([]);
  });

  it("writes a full sync's chains holding anonymous sets first, before other chains' rules and the map flushes (__nft_set_trans_bind walks the transaction so far)", () => {
    const render = renderNftables(shapesSnapshot('IPv4'), shapesOptions('IPv4'));
    const lines = planFullSync(render, { now: 0, live: null, recreateBaseChains: false }).text.trim().split('\n');
    // Rule blocks of per-service chains, in order, and whether one of their rules holds an anonymous set.
    const blocks = lines.flatMap((l, i) => {
      const m = /^add chain ip kube-proxy (\S+\/\S+) \{ (.*) \}$/.exec(l);
      return m ? [{ i, anonymous: m[2]!.split(' ; ').some(holdsAnonymousSet) }] : [];
    });
    const firstPlain = blocks.find((b) => !b.anonymous)!.i;
    const lastAnonymous = Math.max(...blocks.filter((b) => b.anonymous).map((b) => b.i));
    expect(blocks.filter((b) => b.anonymous).length).toBeGreaterThan(3);
    expect(lastAnonymous).toBeLessThan(firstPlain);
    expect(lastAnonymous).toBeLessThan(lines.findIndex((l) => l.startsWith('flush map')));
    expect(holdsAnonymousSet('update @affinity-X { ip saddr }')).toBe(false);
  });

  it('adds only the chains a full sync does not find in the table, and flushes only those it finds', () => {
    const render = renderNftables(shapesSnapshot('IPv4'), shapesOptions('IPv4'));
    const names = render.services.flatMap((s) => s.chains.map((c) => c.name));
    const [kept, missing] = [names.slice(0, 3), names.slice(3)];
    const lines = planFullSync(render, { now: 0, live: { chains: kept, sets: [] }, recreateBaseChains: false }).text.split('\n');
    const verbs = (c: string) => lines.filter((l) => l.endsWith(` ${c}`)).map((l) => l.split(' ').slice(0, 2).join(' '));
    for (const c of kept) expect(verbs(c)).toEqual(['flush chain']);
    for (const c of missing) expect(verbs(c)).toEqual(['add chain']);
  });
});
