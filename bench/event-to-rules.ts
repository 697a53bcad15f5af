/**
 * Where the time between an EndpointSlice event and its rules in the kernel
 * goes (`npm run bench:events`, as root; in network namespaces this script
 * creates and removes): the real path (Proxier, sync runner with
 * --iptables-min-sync-period 0, IptablesMode, iptables-restore), each event
 * waited for, split into the phases of bench/event-phases.ts (the event and
 * the runner's timer, the dirty services' rebuild, the snapshot, render,
 * plan + restore text, the restore itself). Per size and backend,
 * BENCH_REPS rounds (default 5) of BENCH_EVENTS events (default 30); printed
 * as median (min-max) of the rounds' p50 and p99.
 *
 * Environment: BENCH_EVENT_CASES (default "1000:legacy,1000:nft"; e.g. 10000:nft), BENCH_REPS, BENCH_EVENTS.
 */
import type { IptablesBackend } from '../iptables/iptables.ts';
import { DEFAULT_RENDER_OPTIONS } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import type { ProxierEvent } from '../proxier/proxier.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';
import { BENCH_NODE, endpointIP, serviceIP } from './cluster-objects.ts';
import { EventPath, PHASES, type Phase } from './event-phases.ts';
import { fmt, summarize } from './stats.ts';

const cases = (process.env['BENCH_EVENT_CASES'] ?? '1000:legacy,1000:nft').split(',').map((c) => {
  const [n, backend] = c.split(':');
  return { n: Number(n), backend: backend as IptablesBackend };
});
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 30);
const net = createNetnsOps({ runner: createExecaRunner() });
const NS = `kptbench-ev-${process.pid}`;

function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function round(n: number, backend: IptablesBackend): Promise<Record<Phase, number[]>> {
  await net.deleteNamespace(NS).catch(() => undefined);
  await net.addNamespace(NS);
  try {
    const ipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: NS }) });
    const path = new EventPath(ipt, backend, BENCH_NODE, {
      ...DEFAULT_RENDER_OPTIONS,
      detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
    });
    const slices: Record<string, unknown>[] = [];
    const load: ProxierEvent[] = [];
    for (let i = 0; i < n; i++) {
      load.push({
        type: 'add',
        kind: 'Service',
        key: `bench/svc-${i}`,
        old: null,
        obj: makeService('bench', `svc-${i}`, { clusterIP: serviceIP(i), ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
      });
      const slice = makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
        endpoints: Array.from({ length: 5 }, (_, j) => ({ ip: endpointIP(i, j), nodeName: j === 0 ? BENCH_NODE : 'other' })),
        ports: [{ name: 'p80', port: 8080 }],
      });
      slices.push(slice);
      load.push({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj: slice });
    }
    load.push({ type: 'add', kind: 'Node', key: BENCH_NODE, old: null, obj: makeNode(BENCH_NODE, { addresses: ['192.168.0.2'] }) });
    await path.load(load);
    const out = Object.fromEntries([...PHASES, 'total'].map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
    for (let e = 0; e < EVENTS; e++) {
      const i = (e * 7919) % n;
      const old = slices[i] as { endpoints: { addresses: string[] }[] };
      const updated = { ...old, endpoints: old.endpoints.map((ep, j) => (j === 1 ? { ...ep, addresses: [endpointIP(n + e, 1)] } : ep)) };
      slices[i] = updated;
      const t = await path.send({ type: 'update', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old, obj: updated });
      for (const p of Object.keys(t) as Phase[]) out[p].push(t[p]);
    }
    await path.stop();
    return out;
  } finally {
    await net.deleteNamespace(NS).catch(() => undefined);
  }
}

console.log(`event to rules: ${REPS} rounds x ${EVENTS} events per case; ms, median (min-max) over rounds of each round's p50 / p99`);
for (const { n, backend } of cases) {
  const rounds: Record<Phase, number[]>[] = [];
  for (let r = 0; r < REPS; r++) rounds.push(await round(n, backend));
  console.log(`\n${n.toLocaleString('en-US')} services, ${backend}`);
  for (const phase of [...PHASES, 'total'] as Phase[]) {
    const p50 = summarize(rounds.map((x) => pct(x[phase], 50)));
    const p99 = summarize(rounds.map((x) => pct(x[phase], 99)));
    console.log(`  ${phase.padEnd(20)} p50 ${fmt(p50, 1).padEnd(24)} p99 ${fmt(p99, 1)}`);
  }
  const ratio = summarize(rounds.map((x) => pct(x.total, 99) / pct(x.restore, 50)));
  console.log(`  total p99 / restore p50 (the smallest-update floor), per round: ${fmt(ratio, 2)}`);
}
