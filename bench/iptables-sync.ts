/**
 * Benchmark of the iptables mode at 1,000 and 10,000 services with 5
 * endpoints each (run: `npm run bench`, as root; everything happens in
 * network namespaces this script creates and removes). Every figure is the
 * median (min-max) of BENCH_REPS repetitions (default 5); every ratio is
 * taken within one repetition, between two figures measured back to back in
 * an order that alternates from one repetition to the next (A B, B A, ...,
 * bench/stats.ts), and then summarised. Per size and backend:
 *   - render time (snapshot -> ruleset), cold and with the render cache;
 *   - full sync (render + iptables-save + plan + restores) in a fresh
 *     namespace, against two floors in fresh namespaces: the same batches the
 *     agent writes restored alone, and the whole ruleset as one restore;
 *   - partial sync after one endpoint change (a different service each
 *     repetition): bytes written and time, against the same input restored alone;
 *   - the periodic sync with nothing changed (iptables-save, counted against
 *     what was written: drift.ts) against a full sync over the same loaded
 *     tables (what each periodic sync was until 2026-12-05);
 *   - event-to-rules latency through the real agent path (bench/event-phases.ts:
 *     proxier, sync runner with --iptables-min-sync-period 0, mode, restore),
 *     p50 and p99 of each repetition's events, against the smallest-update
 *     floor (the last event's input restored alone, median of 3), and where
 *     the time goes (p50 / p99 per phase over all events);
 *   - peak resident memory of this process (the agent's own: `npm run bench:memory`).
 * iptables-nft 1.8.9's `--noflush` restore of one input is quadratic in its
 * size (over 3 minutes at 10,000 services): above BENCH_NFT_SINGLE_AT
 * services (default 2,000: keeps the whole `npm run bench` near 10 minutes)
 * it is measured at that size and extrapolated with the exponent the 1,000
 * and 2,000 medians give (2 without a 1,000 figure).
 * Environment: BENCH_SIZES (1000,10000), BENCH_BACKENDS (nft,legacy),
 * BENCH_REPS (5), BENCH_EVENTS (events per repetition: 20, 6 at 10,000 and above).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { IptablesBackend as Backend } from '../iptables/iptables.ts';
import { scanSave } from '../iptables/parse-save.ts';
import { planSync } from '../iptables/plan.ts';
import { RenderCache, renderRuleset, type RenderResult } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { EventPath, PHASES, type Phase } from './event-phases.ts';
import {
  batchChainsOf,
  cluster,
  features,
  freshNamespace,
  fullSync,
  loadEvents,
  ms,
  net,
  newMode,
  NODE,
  options,
  PREFIX,
  restoreAlone,
  singleInput,
  timedRestore,
} from './iptables-sync-setup.ts';
import { withoutFirstEndpoint } from './mode-cluster.ts';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

const t0Run = performance.now();
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
const NFT_SINGLE_AT = Number(process.env['BENCH_NFT_SINGLE_AT'] ?? 2000);
const eventsPerRep = (n: number): number => Number(process.env['BENCH_EVENTS'] ?? (n >= 10_000 ? 6 : 20));
/** Nearest-rank percentile: with fewer than 100 events, p99 is the slowest event. */
function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const med = (v: readonly number[]): number => summarize(v).median;
/** Milliseconds as median (min-max), one decimal below 100. */
const fms = (v: readonly number[]): string => fmt(summarize(v), med(v) >= 100 ? 0 : 1);
const fratio = (v: readonly number[]): string => fmt(summarize(v), 2);

interface Result {
  n: number;
  backend: Backend;
  cells: Record<string, string>;
  single: number[];
  full: number[];
  phases: Record<Phase, number[]>;
}

/** Progress on stderr: which stage of which case ended, and when (seconds since the start). */
const progress = (what: string): void => void process.stderr.write(`  ${((performance.now() - t0Run) / 1000).toFixed(0)} s: ${what}\n`);

async function measure(n: number, backend: Backend): Promise<Result> {
  const objs = cluster(n);
  const snapshot = buildSnapshots(objs, { nodeName: NODE, features, families: ['IPv4'] }).snapshots[0]!;
  const renderCold: number[] = [];
  const renderCached: number[] = [];
  let cold: RenderResult | null = null;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    cold = renderRuleset(snapshot, options);
    renderCold.push(ms(t0));
  }
  const cache = new RenderCache();
  renderRuleset(snapshot, options, cache);
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    renderRuleset(snapshot, options, cache);
    renderCached.push(ms(t0));
  }
  const text = toRestoreText(cold!.ruleset);
  const plan = planSync({ topLevel: cold!.topLevel, perService: cold!.perService, applied: null, batchChains: batchChainsOf(backend) });
  const batchTexts = [...plan.batches]; // made once: the floor restores text, it does not make it

  // Full sync and its floors, each in a fresh namespace, the order rotated per repetition.
  const singleHere = !(backend === 'nft' && n > NFT_SINGLE_AT);
  const runs: Record<string, number[]> = { batched: [], single: [], full: [] };
  const targets: Record<string, () => Promise<number>> = {
    batched: () => restoreAlone(`batch-${backend}`, backend, batchTexts),
    full: () => fullSync(backend, snapshot),
    ...(singleHere ? { single: () => restoreAlone(`floor-${backend}`, backend, [text]) } : {}),
  };
  for (let r = 0; r < REPS; r++) for (const t of rotate(Object.keys(targets), r)) runs[t]!.push(await targets[t]!());
  progress(`${n} ${backend}: render, full sync and floors`);

  // Partial sync after one endpoint change (a different service each repetition), paired with the same input alone.
  const pns = await freshNamespace(`partial-${backend}`);
  const pipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: pns }) });
  let written = '';
  const partialMode = newMode(
    { family: pipt.family, save: (t, o) => pipt.save(t, o), restore: async (t, o) => ((written = t), pipt.restore(t, o)) },
    backend,
  );
  await partialMode.sync(snapshot, { periodic: true, previous: null });
  const partial: number[] = [];
  const partialFloor: number[] = [];
  const partialBytes: number[] = [];
  let current = snapshot;
  for (let r = 0; r < REPS; r++) {
    const next = withoutFirstEndpoint(current, Math.floor(n / 2) + r);
    const sync = async (): Promise<void> => {
      const t0 = performance.now();
      await partialMode.sync(next, { periodic: false, previous: current });
      partial.push(ms(t0));
      partialBytes.push(written.length);
      current = next;
    };
    // Floor first on odd repetitions: the previous repetition's input, of the same shape, restored again.
    if (r % 2 === 1) partialFloor.push(await timedRestore(pipt, written));
    await sync();
    if (r % 2 === 0) partialFloor.push(await timedRestore(pipt, written));
  }
  // The periodic sync with nothing changed (it reads the tables, finds no outside change, writes nothing) against a
  // full sync over the same loaded tables (what every periodic sync did before 2026-12-05), alternating.
  const periodic: number[] = [];
  const fullLoaded: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const check = async (): Promise<void> => {
      const t0 = performance.now();
      const report = await partialMode.sync(current, { periodic: true, previous: current });
      periodic.push(ms(t0));
      if (report.full) throw new Error('the periodic sync found an outside change in the bench namespace');
    };
    const rewrite = async (): Promise<void> => {
      partialMode.requestFullSync();
      const t0 = performance.now();
      await partialMode.sync(current, { periodic: false, previous: current });
      fullLoaded.push(ms(t0));
    };
    for (const step of r % 2 ? [rewrite, check] : [check, rewrite]) await step();
  }
  await net.deleteNamespace(pns);
  progress(`${n} ${backend}: partial and periodic syncs`);

  // Event to rules through the agent's path, paired with the smallest-update floor.
  const ens = await freshNamespace(`events-${backend}`);
  const eipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ens }) });
  const path = new EventPath(eipt, backend, NODE, options);
  await path.load(loadEvents(objs));
  const phases = Object.fromEntries([...PHASES, 'total'].map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
  const p50: number[] = [];
  const p99: number[] = [];
  const evFloor: number[] = [];
  let e = 0;
  const runEvents = async (): Promise<void> => {
    const total: number[] = [];
    for (let k = 0; k < eventsPerRep(n); k++, e++) {
      const i = (e * 7919) % n;
      const old = objs.slices[i] as { endpoints: { addresses: string[] }[] };
      const updated = {
        ...old,
        endpoints: old.endpoints.map((ep, j) => (j === 1 ? { ...ep, addresses: [`10.250.${e & 255}.${(e >> 8) + 1}`] } : ep)),
      };
      objs.slices[i] = updated;
      const t = await path.send({ type: 'update', kind: 'EndpointSlice', key: `bench/svc-${i}-slice`, old, obj: updated });
      for (const p of Object.keys(t) as Phase[]) phases[p].push(t[p]);
      total.push(t.total);
    }
    p50.push(pct(total, 50));
    p99.push(pct(total, 99));
  };
  const runFloor = async (): Promise<void> => {
    const v: number[] = [];
    for (let k = 0; k < 3; k++) v.push(await timedRestore(eipt, path.lastText));
    evFloor.push(med(v));
  };
  for (let r = 0; r < REPS; r++) for (const step of r % 2 ? [runFloor, runEvents] : [runEvents, runFloor]) await step();
  await path.stop();
  await net.deleteNamespace(ens);
  progress(`${n} ${backend}: events`);

  const full = runs['full']!;
  const cells: Record<string, string> = {
    'rules (nat+filter)': String(scanSave(text, 'IPv4').ruleCount),
    'restore input MB': (text.length / 1e6).toFixed(1),
    'render cold ms': fms(renderCold),
    'render cached ms': fms(renderCached),
    'single restore ms': singleHere ? fms(runs['single']!) : `see below (${NFT_SINGLE_AT})`,
    'batched floor ms (restores)': `${fms(runs['batched']!)} (${plan.batches.length})`,
    'full sync ms': fms(full),
    'full / batched floor': fratio(pairedRatios(full, runs['batched']!)),
    'full / single restore': singleHere ? fratio(pairedRatios(full, runs['single']!)) : 'see below',
    'partial bytes': fmt(summarize(partialBytes)),
    'partial ms': fms(partial),
    'partial floor ms': fms(partialFloor),
    'partial / floor': fratio(pairedRatios(partial, partialFloor)),
    'partial / full %': fmt(summarize(pairedRatios(partial, full).map((x) => x * 100)), 2),
    'periodic sync, nothing changed ms': fms(periodic),
    'full sync over the loaded tables ms': fms(fullLoaded),
    'periodic / full over loaded': fratio(pairedRatios(periodic, fullLoaded)),
    'event->rules p50 ms': fms(p50),
    'event->rules p99 ms': fms(p99),
    'smallest-update floor ms': fms(evFloor),
    'p99 / smallest-update floor': fratio(pairedRatios(p99, evFloor)),
    'events (reps x per rep)': `${REPS} x ${eventsPerRep(n)}`,
    'bench process peak RSS MB': (peakRss / 1e6).toFixed(0),
  };
  return { n, backend, cells, single: singleHere ? runs['single']! : [], full, phases };
}

const sizes = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
const backends = (process.env['BENCH_BACKENDS'] ?? 'nft,legacy').split(',') as Backend[];
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(`iptables mode: ${REPS} repetitions per figure, median (min-max); load average at start ${load()}`);
await net.sweepNamespaces(PREFIX);
const results: Result[] = [];
const notes: string[] = [];
try {
  for (const n of sizes) for (const b of backends) results.push(await measure(n, b));
  // iptables-nft's one-input restore above NFT_SINGLE_AT services: measured there, extrapolated.
  const big = results.filter((r) => r.backend === 'nft' && r.n > NFT_SINGLE_AT);
  if (big.length > 0) {
    const input = singleInput(NFT_SINGLE_AT);
    const at: number[] = [];
    for (let r = 0; r < REPS; r++) at.push(await restoreAlone('floor-nft-single', 'nft', [input]));
    const small = results.find((r) => r.backend === 'nft' && r.n < NFT_SINGLE_AT && r.single.length > 0);
    const k = small ? Math.log(med(at) / med(small.single)) / Math.log(NFT_SINGLE_AT / small.n) : 2;
    notes.push(
      `iptables-nft one-input --noflush restore at ${NFT_SINGLE_AT.toLocaleString('en-US')} services: ${fms(at)} ms;` +
        ` growth exponent ${k.toFixed(2)} (${small ? `from the ${small.n.toLocaleString('en-US')} and ${NFT_SINGLE_AT.toLocaleString('en-US')} medians` : 'assumed'})`,
    );
    for (const r of big) {
      const f = (r.n / NFT_SINGLE_AT) ** k;
      const est = at.map((x) => x * f);
      r.cells['single restore ms'] = `~${fmt(summarize(est))} (extrapolated from ${NFT_SINGLE_AT})`;
      r.cells['full / single restore'] = `~${fratio(pairedRatios(r.full, est))} (extrapolated)`;
      notes.push(`at ${r.n.toLocaleString('en-US')} services that extrapolates to ~${fmt(summarize(est))} ms (x${f.toFixed(1)})`);
    }
  }
} finally {
  await net.sweepNamespaces(PREFIX);
  clearInterval(sampler);
}
const keys = Object.keys(results[0]?.cells ?? {});
const width = Math.max(...keys.map((k) => k.length), 'services / backend'.length);
const col = 32;
console.log(`${'services / backend'.padEnd(width)}  ${results.map((r) => `${r.n} ${r.backend}`.padStart(col)).join('')}`);
for (const k of keys) console.log(`${k.padEnd(width)}  ${results.map((r) => (r.cells[k] ?? '').padStart(col)).join('')}`);
for (const note of notes) console.log(note);
console.log('\nevent to rules, where the time goes: p50 / p99 ms per phase over every event of every repetition');
console.log(`${'phase'.padEnd(width)}  ${results.map((r) => `${r.n} ${r.backend}`.padStart(col)).join('')}`);
for (const p of [...PHASES, 'total'] as Phase[]) {
  const cell = (r: Result): string => {
    const v = r.phases[p];
    const f = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
    return `${f(pct(v, 50))} / ${f(pct(v, 99))}`;
  };
  console.log(`${p.padEnd(width)}  ${results.map((r) => cell(r).padStart(col)).join('')}`);
}
console.log(`\nload average at end ${load()}; ${((performance.now() - t0Run) / 1000).toFixed(0)} s`);
