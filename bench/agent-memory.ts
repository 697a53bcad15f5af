/**
 * Resident memory of the agent's own path at N services with 5 endpoints each
 * (run by bench/iptables-sync.ts in a child process, with the agent's V8
 * flags): the objects as informers hold them, the proxier's states, one
 * iptables backend with its render cache and applied state; a full sync in a
 * fresh namespace, then 20 endpoint changes. Prints one JSON line.
 */
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import type { IptablesBackend } from '../iptables/iptables.ts';
import { DEFAULT_RENDER_OPTIONS } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import { Proxier } from '../proxier/proxier.ts';
import { silentLogger } from '../proxier/log.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import { realClock } from '../src/system/clock.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

const n = Number(process.argv[2] ?? 10_000);
const backend = (process.argv[3] ?? 'nft') as IptablesBackend;
const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const ns = `kptbench-mem-${backend}`;
let peak = 0;
const sample = (): void => void (peak = Math.max(peak, process.memoryUsage().rss));
const timer = setInterval(sample, 10);
await net.deleteNamespace(ns).catch(() => undefined);
await net.addNamespace(ns);
try {
  const ipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }) });
  let restores = 0;
  const counting = {
    family: ipt.family,
    save: ipt.save.bind(ipt),
    restore: async (t: string, o: Parameters<typeof ipt.restore>[1]) => (await ipt.restore(t, o), void restores++),
  };
  const mode = new IptablesMode(
    {
      iptables: new Map([['IPv4', counting]]),
      render: {
        ...DEFAULT_RENDER_OPTIONS,
        detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
      },
      batchChains: backend === 'nft' ? NFT_BATCH_CHAINS : 0,
    },
    { clock: realClock, logger: silentLogger() },
  );
  const proxier = new Proxier({
    mode,
    builder: stateBuilder('bench-node', { preferSameTrafficDistribution: true }),
    clock: realClock,
    minSyncPeriodMs: 0,
    syncPeriodMs: 3_600_000,
  });
  proxier.start();
  const slices: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    proxier.onEvent({
      type: 'add',
      kind: 'Service',
      key: `bench/svc-${i}`,
      old: null,
      obj: makeService('bench', `svc-${i}`, {
        clusterIP: `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
        ports: [{ name: 'p80', port: 80, targetPort: 8080 }],
      }),
    });
    const slice = makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
      endpoints: Array.from({ length: 5 }, (_, j) => ({ ip: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, nodeName: 'x' })),
      ports: [{ name: 'p80', port: 8080 }],
    });
    slices.push(slice);
    proxier.onEvent({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj: slice });
  }
  proxier.onEvent({ type: 'add', kind: 'Node', key: 'bench-node', old: null, obj: makeNode('bench-node', { addresses: ['192.168.0.2'] }) });
  for (const k of ['Service', 'EndpointSlice', 'Node'] as const) proxier.onSynced(k);
  while (restores === 0) await new Promise((r) => setTimeout(r, 20));
  await proxier.idle();
  for (let e = 0; e < 20; e++) {
    const i = (e * 7919) % n;
    const old = slices[i]!;
    const upd = { ...old, endpoints: (old['endpoints'] as unknown[]).slice(1) };
    slices[i] = upd;
    const before = restores;
    proxier.onEvent({ type: 'update', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old, obj: upd });
    while (restores === before) await new Promise((r) => setTimeout(r, 5));
    await proxier.idle();
  }
  sample();
  await proxier.stop();
  console.log(
    JSON.stringify({ services: n, backend, peakRssMB: Math.round(peak / 1e6), heapUsedMB: Math.round(process.memoryUsage().heapUsed / 1e6) }),
  );
} finally {
  clearInterval(timer);
  await net.deleteNamespace(ns);
}
