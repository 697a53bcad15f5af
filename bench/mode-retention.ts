/**
 * What the agent's path (Proxier + iptables or nftables mode) keeps and
 * allocates, on bench/mode-cluster.ts's cluster with bench/mode-figures.ts's
 * events: heap used after a full garbage collection, resident memory and its
 * peak, after the first sync and after `events` endpoint events. Run as root
 * in a network namespace of its own, with --expose-gc, e.g.
 *   unshare --net node --expose-gc --max-semi-space-size=2 bench/mode-retention.ts iptables 10000 100
 * Options after the event count: `nogc` (no forced collection: peaks as the
 * agent sees them), `profile` (what each event allocates, garbage included,
 * by function, on stderr), `snapshot=<prefix>` (heap snapshots after each stage).
 */
import { Session } from 'node:inspector/promises';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { Proxier } from '../proxier/proxier.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import { realClock } from '../src/system/clock.ts';
import { endpointEvent, FEATURES, makeCluster, NODE } from './mode-cluster.ts';
import { makeSubject, type ModeName } from './mode-subjects.ts';

const [modeArg, nArg, evArg, ...rest] = process.argv.slice(2);
const profile = rest.includes('profile');
const skipGc = rest.includes('nogc');
const snap = rest.find((a) => a.startsWith('snapshot='))?.slice(9);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
let peak = 0;
const sample = () => void (peak = Math.max(peak, process.memoryUsage().rss));
const sampler = setInterval(sample, 10);
const measure = () => {
  sample();
  const peakMB = peak / 1e6;
  if (!skipGc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  const h = getHeapStatistics();
  const mb = (x: number) => +(x / 1e6).toFixed(1);
  return {
    heapMB: mb(m.heapUsed),
    rssMB: mb(m.rss),
    peakRssMB: +peakMB.toFixed(1),
    heapTotalMB: mb(m.heapTotal),
    physicalMB: mb(h.total_physical_size),
    mallocedMB: mb(h.malloced_memory),
    peakMallocedMB: mb(h.peak_malloced_memory),
    externalMB: mb(m.external),
  };
};

const s = makeSubject(modeArg as ModeName);
const n = Number(nArg);
const c = makeCluster(n);
const base = measure();
const proxier = new Proxier({ mode: s.mode, builder: stateBuilder(NODE, FEATURES), clock: realClock, minSyncPeriodMs: 0, syncPeriodMs: 3_600_000 });
proxier.start();
c.services.forEach((obj, i) => proxier.onEvent({ type: 'add', kind: 'Service', key: `bench/svc-${i}`, old: null, obj }));
c.slices.forEach((obj, i) => proxier.onEvent({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj }));
proxier.onEvent({ type: 'add', kind: 'Node', key: NODE, old: null, obj: c.node });
const first = s.nextWrite();
for (const k of ['Service', 'EndpointSlice', 'Node'] as const) proxier.onSynced(k);
await first;
await proxier.idle();
const afterFirst = measure();
if (snap) writeHeapSnapshot(`${snap}-first.heapsnapshot`);
const session = profile ? new Session() : null;
if (session) {
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
for (let e = 0; e < Number(evArg); e++) {
  const { key, old, obj } = endpointEvent(c, e);
  const written = s.nextWrite();
  proxier.onEvent({ type: 'update', kind: 'EndpointSlice', key, old, obj });
  await written;
  await proxier.idle();
}
if (session) {
  const { profile: p } = await session.post('HeapProfiler.stopSampling');
  type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const walk = (n: Node, stack: string[]): number => {
    const where = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
    self.set(where, (self.get(where) ?? 0) + n.selfSize);
    let sum = n.selfSize;
    for (const c of n.children) sum += walk(c, [...stack, where]);
    if (!stack.includes(where)) total.set(where, (total.get(where) ?? 0) + sum);
    return sum;
  };
  const all = walk(p.head as Node, []);
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([k, v]) => `${(v / 1e6 / Number(evArg)).toFixed(3)} MB/event  ${k}`);
  console.error(
    `allocated per event: ${(all / 1e6 / Number(evArg)).toFixed(2)} MB\n-- self:\n${top(self).join('\n')}\n-- total:\n${top(total).join('\n')}`,
  );
  session.disconnect();
}
const afterEvents = measure();
if (snap) writeHeapSnapshot(`${snap}-events.heapsnapshot`);
await proxier.stop();
clearInterval(sampler);
await s.close();
console.log(JSON.stringify({ mode: modeArg, services: n, events: Number(evArg), base, afterFirst, afterEvents }));
