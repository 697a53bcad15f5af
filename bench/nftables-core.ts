/**
 * Figures for the nftables core at 1,000 and 10,000 services with 5 endpoints
 * each (run: `npm run bench:nftables`, as root; `nft` runs only in network
 * namespaces this script creates and removes). Per size:
 *   - render time (snapshot -> table model), cold and with the render cache;
 *   - cold start (the table does not exist yet): planned in chunks of whole
 *     service ports (cold-start.ts), loaded into a fresh namespace;
 *   - full sync over the loaded table, one transaction: planning, size, and
 *     `nft -f` of it (that time alone is the floor);
 *   - listing the table back (`nft -j list table`) and parsing it;
 *   - partial sync after one endpoint change: planning time, bytes and
 *     operations, and `nft -f` of it.
 * The agent path (runner, events, RSS) is measured once the mode is wired.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { planColdStart } from '../nftables/cold-start.ts';
import { planFullSync } from '../nftables/full-sync.ts';
import { Nft } from '../nftables/nft.ts';
import { parseNftJson } from '../nftables/parse-json.ts';
import { planPartialSync } from '../nftables/partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRenderOptions } from '../nftables/render.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import type { Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptnbench';
const NODE = 'bench-node';
const options: NftRenderOptions = {
  masqueradeBit: 14,
  masqueradeAll: false,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
  nodePortAddresses: [],
};

function slice(i: number, endpointsPer: number, first = 1) {
  const addresses = Array.from({ length: endpointsPer }, (_, j) => `10.${(i >> 8) & 255}.${i & 255}.${j + first}`);
  return makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
    endpoints: addresses.map((a, j) => ({ ip: a, nodeName: j === 0 ? NODE : 'other' })),
    ports: [{ name: 'p80', port: 8080 }],
  });
}

function snapshotOf(n: number, slices: unknown[]): Snapshot {
  const services = Array.from({ length: n }, (_, i) =>
    makeService('bench', `svc-${i}`, {
      clusterIP: `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      ports: [{ name: 'p80', port: 80, targetPort: 8080 }],
    }),
  );
  const node = makeNode(NODE, { addresses: ['192.168.0.2'] });
  return buildSnapshots({ services, slices, node }, { nodeName: NODE, families: ['IPv4'], features: { preferSameTrafficDistribution: true } })
    .snapshots[0]!;
}

const ms = (t0: number): number => performance.now() - t0;
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const kb = (text: string): string => `${(Buffer.byteLength(text) / 1024).toFixed(text.length > 10_240 ? 0 : 2)} KiB`;

async function withNamespace<T>(name: string, fn: (nft: Nft) => Promise<T>): Promise<T> {
  const ns = `${PREFIX}-${name}`;
  await net.deleteNamespace(ns).catch(() => undefined);
  await net.addNamespace(ns);
  try {
    return await fn(new Nft(createExecaRunner({ netns: ns })));
  } finally {
    await net.deleteNamespace(ns);
  }
}

async function measure(n: number): Promise<void> {
  const slices = Array.from({ length: n }, (_, i) => slice(i, 5));
  const snapshot = snapshotOf(n, slices);

  let t0 = performance.now();
  renderNftables(snapshot, options);
  const coldRender = ms(t0);
  const cache = new NftRenderCache();
  const render = renderNftables(snapshot, options, cache);
  t0 = performance.now();
  renderNftables(snapshot, options, cache);
  const warm = ms(t0);

  t0 = performance.now();
  const full = planFullSync(render, { now: 0, live: null, recreateBaseChains: true });
  const planMs = ms(t0);

  // One endpoint of one service replaced; every other service keeps its state object, as the proxier does.
  const k = Math.floor(n / 2);
  const changed = snapshotOf(
    n,
    slices.map((s, i) => (i === k ? slice(i, 5, 100) : s)),
  );
  const key = `bench/svc-${k}:p80`;
  const next: Snapshot = { ...snapshot, services: snapshot.services.map((s, i) => (s.service.key === key ? changed.services[i]! : s)) };
  t0 = performance.now();
  const nextRender = renderNftables(next, options, cache);
  const partial = planPartialSync(nextRender, full.next, 1);
  const partialMs = ms(t0);

  t0 = performance.now();
  const cold = planColdStart(render);
  const coldPlanMs = ms(t0);

  await withNamespace(`${n}`, async (nft) => {
    t0 = performance.now();
    for (const t of [cold.text, ...cold.more]) await nft.run(t);
    const coldLoadMs = ms(t0);
    t0 = performance.now();
    await nft.run(full.text);
    const loadMs = ms(t0);
    t0 = performance.now();
    const json = (await nft.listJson('ip'))!;
    const listMs = ms(t0);
    t0 = performance.now();
    parseNftJson(json, 'ip');
    const parseMs = ms(t0);
    t0 = performance.now();
    await nft.run(partial.text);
    const partialLoadMs = ms(t0);
    console.log(
      `\n${n} services (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs) x 5 endpoints (${render.services.reduce((a, s) => a + s.chains.length, 0)} per-service chains)`,
    );
    console.log(`  render: cold ${fmt(coldRender)} ms, cached ${fmt(warm)} ms`);
    console.log(
      `  cold start: plan ${fmt(coldPlanMs)} ms, ${1 + cold.more.length} transactions, ${cold.operations} operations; nft -f ${fmt(coldLoadMs)} ms`,
    );
    console.log(
      `  full sync over the table (one transaction): plan ${fmt(planMs)} ms, ${kb(full.text)}, ${full.operations} operations; nft -f ${fmt(loadMs)} ms (the floor)`,
    );
    console.log(
      `  full sync total (render + plan + nft -f): ${fmt(coldRender + planMs + loadMs)} ms = ${((coldRender + planMs + loadMs) / loadMs).toFixed(2)}x the floor`,
    );
    console.log(`  list back: nft -j list ${fmt(listMs)} ms (${kb(json)}), parse ${fmt(parseMs)} ms`);
    console.log(
      `  one endpoint changed: render + plan ${fmt(partialMs)} ms, ${partial.text.length} bytes, ${partial.operations} operations; nft -f ${fmt(partialLoadMs)} ms`,
    );
    console.log(`  partial / full sync time: ${(((partialMs + partialLoadMs) / (coldRender + planMs + loadMs)) * 100).toFixed(2)} %`);
  });
}

await net.sweepNamespaces(PREFIX);
try {
  for (const n of [1000, 10_000]) await measure(n);
} finally {
  await net.sweepNamespaces(PREFIX);
}
