/**
 * The clusters, namespaces and floors of bench/iptables-sync.ts: the
 * N-service cluster (5 endpoints each, one local), its snapshot with one
 * endpoint gone, the informer events that load it, the whole ruleset as one
 * restore input, and the restores and full syncs timed in fresh network
 * namespaces this module creates and removes.
 */
import { performance } from 'node:perf_hooks';
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import type { Iptables, IptablesBackend as Backend } from '../iptables/iptables.ts';
import { renderRuleset, DEFAULT_RENDER_OPTIONS, type RenderOptions } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { silentLogger } from '../proxier/log.ts';
import type { ProxierEvent } from '../proxier/proxier.ts';
import type { Snapshot } from '../proxier/types.ts';
import { realClock } from '../src/system/clock.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

const runner = createExecaRunner();
export const net = createNetnsOps({ runner });
export const PREFIX = 'kptbench';
export const NODE = 'bench-node';
export const features = { preferSameTrafficDistribution: true };
/** The process clock with sub-millisecond readings, for sync durations. */
const preciseClock = { ...realClock, now: () => performance.now() };
export const options: RenderOptions = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
};

export function cluster(n: number, endpointsPer = 5) {
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

export const ms = (t0: number): number => performance.now() - t0;

export async function freshNamespace(name: string): Promise<string> {
  const ns = `${PREFIX}-${name}`;
  await net.deleteNamespace(ns).catch(() => undefined);
  await net.addNamespace(ns);
  return ns;
}

export async function timedRestore(ipt: Iptables, text: string): Promise<number> {
  const t0 = performance.now();
  await ipt.restore(text, { noflush: true, counters: false });
  return ms(t0);
}

/** Restores `texts` in order into a namespace of its own (removed after); returns the time the restores took. */
export async function restoreAlone(name: string, backend: Backend, texts: readonly string[], timeoutMs = 180_000): Promise<number> {
  const ns = await freshNamespace(name);
  try {
    const ipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }), timeoutMs });
    let total = 0;
    for (const t of texts) total += await timedRestore(ipt, t);
    return total;
  } finally {
    await net.deleteNamespace(ns);
  }
}

export const batchChainsOf = (backend: Backend): number => (backend === 'nft' ? NFT_BATCH_CHAINS : 0);
export const newMode = (ipt: Iptables, backend: Backend): IptablesMode =>
  new IptablesMode(
    { iptables: new Map([['IPv4', ipt]]), render: options, batchChains: batchChainsOf(backend) },
    { clock: preciseClock, logger: silentLogger() },
  );

/** A full sync by a new mode into a fresh namespace: what the agent does on start. */
export async function fullSync(backend: Backend, snapshot: Snapshot): Promise<number> {
  const ns = await freshNamespace(`sync-${backend}`);
  try {
    const mode = newMode(createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }) }), backend);
    const t0 = performance.now();
    await mode.sync(snapshot, { periodic: true, previous: null });
    return ms(t0);
  } finally {
    await net.deleteNamespace(ns);
  }
}

export function loadEvents(objs: ReturnType<typeof cluster>): ProxierEvent[] {
  const events: ProxierEvent[] = [];
  objs.services.forEach((s, i) => events.push({ type: 'add', kind: 'Service', key: `bench/svc-${i}`, old: null, obj: s }));
  objs.slices.forEach((s, i) => events.push({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj: s }));
  events.push({ type: 'add', kind: 'Node', key: NODE, old: null, obj: objs.node });
  return events;
}

export function singleInput(n: number): string {
  const { snapshots } = buildSnapshots(cluster(n), { nodeName: NODE, features, families: ['IPv4'] });
  return toRestoreText(renderRuleset(snapshots[0]!, options).ruleset);
}
