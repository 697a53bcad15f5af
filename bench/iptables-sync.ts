/**
 * Benchmark of the iptables mode at 1,000 and 10,000 services with 5
 * endpoints each (run: `npm run bench`, as root; everything happens in
 * network namespaces this script creates and removes). Prints, per size and
 * backend, in one run:
 *   - render time (snapshot -> ruleset), cold and with the render cache;
 *   - full sync (render + plan + iptables-restore) in a fresh namespace;
 *   - the floor: iptables-restore alone loading the same text;
 *   - partial sync after one endpoint change: bytes written and time, and the
 *     floor for that input (iptables-restore --noflush of it alone);
 *   - event-to-rules latency through the real agent path (proxier, sync
 *     runner with --iptables-min-sync-period 0, backend), p50 and p99;
 *   - peak resident memory of this process (the agent's own: `npm run bench:memory`, bench/agent-memory.ts).
 */
import { performance } from 'node:perf_hooks';
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import type { Iptables, IptablesBackend as Backend } from '../iptables/iptables.ts';
import { scanSave } from '../iptables/parse.ts';
import { planSync } from '../iptables/plan.ts';
import { RenderCache, renderRuleset, DEFAULT_RENDER_OPTIONS, type RenderOptions } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { Proxier } from '../proxier/proxier.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { silentLogger } from '../proxier/log.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import { realClock } from '../src/system/clock.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptbench';
const NODE = 'bench-node';
const features = { preferSameTrafficDistribution: true };
/** The process clock with sub-millisecond readings, for sync durations. */
const preciseClock = { ...realClock, now: () => performance.now() };
const options: RenderOptions = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
};

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

function cluster(n: number, endpointsPer = 5) {
  const services: unknown[] = [];
  const slices: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const ip = `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    services.push(makeService('bench', `svc-${i}`, { clusterIP: ip, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }));
    const addresses = Array.from({ length: endpointsPer }, (_, j) => `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`);
    slices.push(
      makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
        endpoints: addresses.map((a, j) => ({ ip: a, nodeName: j === 0 ? NODE : 'other' })),
        ports: [{ name: 'p80', port: 8080 }],
      }),
    );
  }
  return { services, slices, node: makeNode(NODE, { addresses: ['192.168.0.2'] }) };
}

const ms = (t0: number): number => performance.now() - t0;
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function freshNamespace(name: string): Promise<string> {
  const ns = `${PREFIX}-${name}`;
  await net.deleteNamespace(ns).catch(() => undefined);
  await net.addNamespace(ns);
  return ns;
}

async function timedRestore(ipt: Iptables, text: string): Promise<number> {
  const t0 = performance.now();
  await ipt.restore(text, { noflush: true, counters: false });
  return ms(t0);
}

/** Records when each restore finished: the moment rules are in the kernel. */
function recording(ipt: Iptables, done: number[]): Iptables {
  return {
    family: ipt.family,
    save: (t) => ipt.save(t),
    restore: async (text, o) => {
      await ipt.restore(text, o);
      done.push(performance.now());
    },
  };
}

async function measure(n: number, backend: Backend): Promise<Record<string, string>> {
  const objs = cluster(n);
  const { snapshots } = buildSnapshots(objs, { nodeName: NODE, features, families: ['IPv4'] });
  const snapshot = snapshots[0]!;
  let t0 = performance.now();
  const cold = renderRuleset(snapshot, options);
  const renderMs = ms(t0);
  const text = toRestoreText(cold.ruleset);

  // Floor: iptables-restore alone, same input as one restore, fresh namespace (capped: nft is quadratic in one input).
  const floorNs = await freshNamespace(`floor-${backend}`);
  const floorIpt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: floorNs }), timeoutMs: 180_000 });
  const singleFloorMs = await timedRestore(floorIpt, text).catch(() => Infinity);
  await net.deleteNamespace(floorNs);
  // Floor for what the agent writes: the same batches, restored alone.
  const batchNs = await freshNamespace(`batch-${backend}`);
  const batchIpt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: batchNs }) });
  const plan = planSync({
    topLevel: cold.topLevel,
    perService: cold.perService,
    applied: null,
    batchChains: backend === 'nft' ? NFT_BATCH_CHAINS : 0,
  });
  let floorMs = 0;
  for (const b of plan.batches) floorMs += await timedRestore(batchIpt, b);
  await net.deleteNamespace(batchNs);

  // Full sync through the iptables mode (render with cache + save + plan + restore).
  const ns = await freshNamespace(`sync-${backend}`);
  const ipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }) });
  const doneAt: number[] = [];
  const batchChains = backend === 'nft' ? NFT_BATCH_CHAINS : 0;
  const be = new IptablesMode(
    { iptables: new Map([['IPv4', recording(ipt, doneAt)]]), render: options, batchChains },
    { clock: preciseClock, logger: silentLogger() },
  );
  t0 = performance.now();
  await be.sync(snapshot, { periodic: true, previous: null });
  const fullMs = ms(t0);
  const cache = new RenderCache();
  renderRuleset(snapshot, options, cache);
  t0 = performance.now();
  renderRuleset(snapshot, options, cache);
  const cachedRenderMs = ms(t0);

  // Partial sync after one endpoint change.
  const changed = snapshot.services.map((s, i) =>
    i === Math.floor(n / 2)
      ? {
          ...s,
          endpoints: s.endpoints.slice(1),
          selection: { ...s.selection, cluster: s.selection.cluster!.slice(1), allReachable: s.selection.allReachable.slice(1) },
        }
      : s,
  );
  const partialSnap = { ...snapshot, services: changed };
  let partialText = '';
  const capture: Iptables = {
    family: 'IPv4',
    save: (t) => ipt.save(t),
    restore: async (txt, o) => {
      partialText = txt;
      await ipt.restore(txt, o);
    },
  };
  const be2 = new IptablesMode(
    { iptables: new Map([['IPv4', capture]]), render: options, batchChains },
    { clock: preciseClock, logger: silentLogger() },
  );
  await be2.sync(snapshot, { periodic: true, previous: null });
  t0 = performance.now();
  await be2.sync(partialSnap, { periodic: false, previous: snapshot });
  const partialMs = ms(t0);
  const partialFloorMs = await timedRestore(ipt, partialText);

  // Event-to-rules latency through the proxier and runner (min sync period 0).
  const events = n >= 10_000 ? 20 : 60;
  const latencies: number[] = [];
  const doneTimes: number[] = [];
  const be3 = new IptablesMode(
    { iptables: new Map([['IPv4', recording(ipt, doneTimes)]]), render: options, batchChains },
    { clock: preciseClock, logger: silentLogger() },
  );
  const proxier = new Proxier({ mode: be3, builder: stateBuilder(NODE, features), clock: realClock, minSyncPeriodMs: 0, syncPeriodMs: 3_600_000 });
  proxier.start();
  objs.services.forEach((s, i) => proxier.onEvent({ type: 'add', kind: 'Service', key: `bench/svc-${i}`, old: null, obj: s }));
  objs.slices.forEach((s, i) => proxier.onEvent({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj: s }));
  proxier.onEvent({ type: 'add', kind: 'Node', key: NODE, old: null, obj: objs.node });
  for (const k of ['Service', 'EndpointSlice', 'Node'] as const) proxier.onSynced(k);
  while (doneTimes.length === 0) await new Promise((r) => setTimeout(r, 10));
  await proxier.idle();
  for (let e = 0; e < events; e++) {
    const i = (e * 7919) % n;
    const old = objs.slices[i] as { endpoints: { addresses: string[] }[] };
    const updated = { ...old, endpoints: old.endpoints.map((ep, j) => (j === 1 ? { ...ep, addresses: [`10.250.${e & 255}.${(e >> 8) + 1}`] } : ep)) };
    objs.slices[i] = updated;
    const before = doneTimes.length;
    const sent = performance.now();
    proxier.onEvent({ type: 'update', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old, obj: updated });
    while (doneTimes.length === before) await new Promise((r) => setImmediate(r));
    latencies.push(doneTimes.at(-1)! - sent);
    await proxier.idle();
  }
  await proxier.stop();
  await net.deleteNamespace(ns);

  return {
    services: String(n),
    backend,
    'rules (nat+filter)': String(scanSave(text, 'IPv4').ruleCount),
    'restore input MB': (text.length / 1e6).toFixed(1),
    'render ms (cold / cached)': `${fmt(renderMs)} / ${fmt(cachedRenderMs)}`,
    'single restore ms': Number.isFinite(singleFloorMs) ? fmt(singleFloorMs) : '> 180000',
    'batched restore floor ms': `${fmt(floorMs)} (${plan.batches.length})`,
    'full sync ms': fmt(fullMs),
    'full / floor': (fullMs / floorMs).toFixed(2),
    'full / single restore': Number.isFinite(singleFloorMs) ? (fullMs / singleFloorMs).toFixed(2) : '< 0.1',
    'partial bytes': String(partialText.length),
    'partial ms': fmt(partialMs),
    'partial / full': `${((partialMs / fullMs) * 100).toFixed(2)}%`,
    'partial floor ms': fmt(partialFloorMs),
    'event->rules p50 / p99 ms': `${fmt(pct(latencies, 50))} / ${fmt(pct(latencies, 99))}`,
    'p99 / partial floor': (pct(latencies, 99) / partialFloorMs).toFixed(2),
    'bench process peak RSS MB': (peakRss / 1e6).toFixed(0),
  };
}

const sizes = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
const backends = (process.env['BENCH_BACKENDS'] ?? 'nft,legacy').split(',') as Backend[];
await net.sweepNamespaces(PREFIX);
const rows: Record<string, string>[] = [];
try {
  for (const n of sizes) for (const b of backends) rows.push(await measure(n, b));
} finally {
  await net.sweepNamespaces(PREFIX);
  clearInterval(sampler);
}
const keys = Object.keys(rows[0] ?? {});
const width = Math.max(...keys.map((k) => k.length));
for (const k of keys) console.log(`${k.padEnd(width)}  ${rows.map((r) => (r[k] ?? '').padStart(14)).join('')}`);
