/**
 * One mode at one cluster size, measured the same way for both modes (run by
 * bench/modes-side-by-side.ts under `unshare --net`, with the agent's V8
 * flags: its semi-space size from the command line, the rest from
 * src/system/agent-heap.ts as the agent sets them; prints one JSON line).
 * Arguments: mode, services, then key=value: events (event-to-rules
 * samples), partial (partial syncs), full (full syncs), and for the nftables
 * mode generation=A|B (the ruleset shape, nftables/objects.ts; default A).
 *
 * 1. The agent's path: the Proxier (minimum sync period 0, as
 *    `--iptables-min-sync-period 0s` or `nftables.minSyncPeriod: 0s`) fed
 *    the cluster as informer events; the first sync onto the empty namespace,
 *    then `events` endpoint changes one at a time: event to the moment the
 *    sync's first write has finished (rules in the kernel), p50 and p99. Peak
 *    resident memory is sampled during this part only (the agent's objects,
 *    proxier and mode; not the rule tools' processes; the bench keeps no
 *    write texts until it is over).
 *    With churn=N (and gap=MS, default 250): then N more endpoint changes
 *    `gap` ms apart, not waiting for their syncs (a rolling update at scale):
 *    each one's latency ends with the first rules write that started after
 *    it; the nftables mode's stale-chain deletions (writes of their own) are
 *    counted apart. Memory is not sampled in this part.
 * 2. Partial syncs: mode.sync() alternating between the cluster and the
 *    cluster with one endpoint fewer, each paired with its floor: the same
 *    write replayed alone, right after the sync or (every other pair) right
 *    before it, from the earlier sync of the same change.
 * 3. Full syncs over the loaded rules (requestFullSync(), then a periodic
 *    sync), each paired with its floor the same way (after, before, after, ...).
 */
import { readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Proxier } from '../proxier/proxier.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import type { Snapshot } from '../proxier/types.ts';
import { tuneAgentHeap } from '../src/system/agent-heap.ts';
import { realClock } from '../src/system/clock.ts';
import { endpointEvent, FEATURES, makeCluster, NODE, snapshotOf, withoutOneEndpoint, type BenchCluster } from './mode-cluster.ts';
import { makeSubject, type ModeName, type Subject, type Write } from './mode-subjects.ts';
import type { NftGeneration } from '../nftables/objects.ts';

const [modeArg, nArg, ...rest] = process.argv.slice(2);
const arg = (k: string, d: number) => Number(rest.find((a) => a.startsWith(`${k}=`))?.slice(k.length + 1) ?? d);
const outside = rest.find((a) => a.startsWith('outside='))?.slice(8);
if (outside === undefined || readlinkSync('/proc/self/ns/net') === outside)
  throw new Error('mode-figures.ts must run in a network namespace of its own (bench/modes-side-by-side.ts starts it under unshare --net)');
const name = modeArg as ModeName;
const generationArg = rest.find((a) => a.startsWith('generation='))?.slice('generation='.length);
if (generationArg !== undefined && generationArg !== 'A' && generationArg !== 'B') throw new Error(`generation=${generationArg}: A or B`);
const generation: NftGeneration | undefined = generationArg;
const n = Number(nArg);
// The V8 settings the agent sets for itself once its modules are loaded (heap growth; optimizing tiers off here), and
// in the nftables mode the full collection its session runs while nft applies large transactions.
const tuned = tuneAgentHeap(process.execArgv, name);

let peak = 0;
const sample = () => void (peak = Math.max(peak, process.memoryUsage().rss));
let sampler: ReturnType<typeof setInterval> | null = setInterval(sample, 10);

const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** The agent's path: first sync, then endpoint events one by one. */
async function agentPath(s: Subject, events: number, churn: number, gapMs: number) {
  const c = makeCluster(n);
  const proxier = new Proxier({ mode: s.mode, builder: stateBuilder(NODE, FEATURES), clock: realClock, minSyncPeriodMs: 0, syncPeriodMs: 3_600_000 });
  proxier.start();
  c.services.forEach((obj, i) => proxier.onEvent({ type: 'add', kind: 'Service', key: `bench/svc-${i}`, old: null, obj }));
  c.slices.forEach((obj, i) => proxier.onEvent({ type: 'add', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old: null, obj }));
  proxier.onEvent({ type: 'add', kind: 'Node', key: NODE, old: null, obj: c.node });
  const t0 = performance.now();
  const first = s.nextWrite();
  for (const k of ['Service', 'EndpointSlice', 'Node'] as const) proxier.onSynced(k);
  await first;
  await proxier.idle();
  const firstSyncMs = s.writes.at(-1)!.doneAt - t0;
  sample();
  const firstSyncPeakMB = peak / 1e6;
  const latencies: number[] = [];
  for (let e = 0; e < events; e++) {
    const { key, old, obj } = endpointEvent(c, e);
    const written = s.nextWrite();
    const sent = performance.now();
    proxier.onEvent({ type: 'update', kind: 'EndpointSlice', key, old, obj });
    latencies.push((await written).doneAt - sent);
    await proxier.idle();
  }
  sample();
  clearInterval(sampler!);
  sampler = null;
  const peakRssMB = peak / 1e6;
  const heapUsedMB = process.memoryUsage().heapUsed / 1e6;
  const churned = churn > 0 ? await churnPhase(s, proxier, c, events, churn, gapMs) : null;
  await proxier.stop();
  return { cluster: c, firstSyncMs, latencies, firstSyncPeakMB, peakRssMB, heapUsedMB, ...(churned ? { churn: churned } : {}) };
}

/** `count` endpoint changes `gapMs` apart, not waiting for their syncs; see the header. */
async function churnPhase(s: Subject, proxier: Proxier, c: BenchCluster, first: number, count: number, gapMs: number) {
  s.keepTexts();
  const w0 = s.writes.length;
  const d0 = s.deletions.length;
  const sent: number[] = [];
  for (let e = first; e < first + count; e++) {
    const { key, old, obj } = endpointEvent(c, e);
    sent.push(performance.now());
    proxier.onEvent({ type: 'update', kind: 'EndpointSlice', key, old, obj });
    await new Promise((r) => setTimeout(r, gapMs));
  }
  await proxier.idle();
  const rules = s.writes.slice(w0);
  const latencies = sent.map((t) => {
    const w = rules.find((r) => r.startedAt >= t);
    return w === undefined ? NaN : w.doneAt - t;
  });
  // nftables: the stale-chain deletions, beside the syncs; the iptables mode has none apart.
  return { gapMs, latencies, writes: rules.length, cleanups: s.deletions.length - d0 };
}

/**
 * mode.sync() to `target` and its main writes replayed alone (and through the
 * session), back to back. `before`: the same writes from an earlier sync of
 * the same kind, replayed before the sync instead of after it (every other
 * pair, so that neither side always follows the other's kernel work).
 */
async function paired(s: Subject, target: Snapshot, previous: Snapshot, full: boolean, before: readonly Write[] | null) {
  // Full syncs are floored through the session too only when asked (fullSession=1): it doubles the longest step.
  // Each replay starts from a table it applies to: set elements the writes delete are put back first (untimed), and
  // after a replay before the sync, once more, so that the sync finds the table it last wrote (readdDeleted).
  const replay = async (ws: readonly Write[]) => {
    await s.readdDeleted(ws);
    const floor = await time(() => s.floor(ws));
    let session: number | null = null;
    if (s.floorSession !== null && !(full && !arg('fullSession', 0))) {
      await s.readdDeleted(ws);
      session = await time(() => s.floorSession!(ws));
    }
    return { floor, session };
  };
  const early = before === null ? null : await replay(before);
  if (before !== null) await s.readdDeleted(before);
  const w0 = s.writes.length;
  if (full) s.mode.requestFullSync();
  const ms = await time(() => s.mode.sync(target, { periodic: full, previous }));
  const main = s.main(s.writes.slice(w0));
  const late = early ?? (await replay(main));
  const writesMs = main.reduce((a, w) => a + w.doneAt - w.startedAt, 0);
  return {
    ms,
    writesMs,
    ...late,
    floorFirst: early !== null,
    bytes: main.reduce((a, w) => a + Buffer.byteLength(w.text), 0),
    writes: main.length,
    main,
  };
}

const s = makeSubject(name, { collectGarbage: tuned.collectGarbage, generation });
const out: Record<string, unknown> = { mode: name, services: n, ...(generation ? { generation } : {}) };
try {
  const agent = await agentPath(s, arg('events', 0), arg('churn', 0), arg('gap', 250));
  const { cluster: _, ...figures } = agent;
  Object.assign(out, figures);
  s.keepTexts();
  const base = snapshotOf(agent.cluster);
  // Settle on objects of our own (untimed); then once more a second later, which deletes the chains the events
  // left stale (nftables: a separate transaction, STALE_CHAIN_DELAY_MS after they were flushed).
  await s.mode.sync(base, { periodic: false, previous: null });
  await new Promise((r) => setTimeout(r, 1100));
  await s.mode.sync(base, { periodic: false, previous: base });
  const fewer = withoutOneEndpoint(base);
  // Pairs 0 and 1 (one endpoint fewer, back) replay after the sync; 2 and 3 before it, with the texts of 0 and 1; ...
  const partial: Awaited<ReturnType<typeof paired>>[] = [];
  for (let i = 0; i < arg('partial', 0); i++) {
    const earlier = i % 4 >= 2 ? partial[i - 2]!.main : null;
    partial.push(await paired(s, i % 2 === 0 ? fewer : base, i % 2 === 0 ? base : fewer, false, earlier));
  }
  if (partial.length % 2 === 1) await s.mode.sync(base, { periodic: false, previous: fewer });
  const full: Awaited<ReturnType<typeof paired>>[] = [];
  for (let i = 0; i < arg('full', 0); i++) full.push(await paired(s, base, base, true, i % 2 === 1 ? full[i - 1]!.main : null));
  const strip = ({ main: _, ...p }: (typeof full)[number]) => p;
  Object.assign(out, { partial: partial.map(strip), full: full.map(strip) });
} finally {
  if (sampler !== null) clearInterval(sampler);
  await s.close();
}
console.log(JSON.stringify(out));
