/**
 * CPU of planning an iptables sync (no root, no iptables-restore): render +
 * planSync + every restore text of the bench cluster (bench/mode-cluster.ts:
 * N services x 5 endpoints), the iptables counterpart of
 * bench/nftables-plan.ts. Three ways: a full sync with a warm render cache
 * (a periodic or requested full sync), a partial sync of one endpoint change
 * (the cluster and the cluster with one endpoint fewer, alternating, against
 * the applied state of the previous plan), and a full sync with a new render
 * cache (every service port rendered again: the first sync).
 * Run: `node bench/iptables-plan.ts` (BENCH_SIZES, default 1000,10000;
 * BENCH_REPS, default 7).
 *
 * Each repetition runs in a child process of its own (the agent's
 * `--max-semi-space-size=2`); a child plans ITERATIONS times each way after
 * one untimed plan and reports the median. BENCH_PLAN_BEFORE=<dir of another
 * checkout> runs that checkout's renderer and planner too, interleaved with
 * this tree's (A B, B A, ...), checks that both wrote the same texts
 * (SHA-256 of the full and the partial sync's), and prints the
 * per-repetition ratio after / before. Figures: median (min-max) over the
 * repetitions of wall time and process CPU (user + system).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../proxier/types.ts';
import { DETECT_LOCAL, makeCluster, snapshotOf, withoutOneEndpoint } from './mode-cluster.ts';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

const ITERATIONS = 5;
const WAYS = ['full', 'partial', 'cold'] as const;
type Way = (typeof WAYS)[number];
const LABELS: Record<Way, string> = {
  full: 'full sync, warm render cache',
  partial: 'partial sync, one endpoint',
  cold: 'full sync, new render cache',
};

type Result = Record<Way, { wall: number; cpu: number }> & { readonly sha: string };

async function child(dir: string, n: number): Promise<Result> {
  const R = (await import(`${dir}/iptables/render.ts`)) as typeof import('../iptables/render.ts');
  const P = (await import(`${dir}/iptables/plan.ts`)) as typeof import('../iptables/plan.ts');
  const M = (await import(`${dir}/iptables/iptables-mode.ts`)) as typeof import('../iptables/iptables-mode.ts');
  const options = { ...R.DEFAULT_RENDER_OPTIONS, detectLocal: DETECT_LOCAL };
  const base = snapshotOf(makeCluster(n));
  const fewer = withoutOneEndpoint(base);
  const hash = createHash('sha256');
  const cache = new R.RenderCache();
  let applied: ReturnType<ReturnType<typeof P.planSync>['commit']> | null = null;
  let flip = false;
  const plan = (way: Way, keep: boolean): void => {
    const snapshot: Snapshot = way === 'partial' && (flip = !flip) ? fewer : base;
    const render = R.renderRuleset(snapshot, options, way === 'cold' ? new R.RenderCache() : cache);
    const p = P.planSync({
      topLevel: render.topLevel,
      perService: render.perService,
      applied: way === 'partial' ? applied : null,
      batchChains: M.NFT_BATCH_CHAINS,
    });
    let text = '';
    for (const t of p.batches) text = t; // every batch made, as the mode writes them (the last one kept for the hash)
    if (keep) hash.update(`${way}:${p.bytes}:${text}`);
    applied = p.commit(way === 'partial' ? applied : null);
  };
  const measure = (way: Way) => {
    plan(way, true); // untimed: fills the cache and the applied state
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      plan(way, false);
      walls.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
    }
    return { wall: summarize(walls).median, cpu: summarize(cpus).median };
  };
  const full = measure('full');
  const partial = measure('partial');
  const cold = measure('cold');
  return { full, partial, cold, sha: hash.digest('hex') };
}

const childArgs = process.argv.slice(2);
if (childArgs[0] === '--child') {
  console.log(JSON.stringify(await child(childArgs[1]!, Number(childArgs[2]))));
} else {
  const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
  const trees = [{ label: 'this tree', dir: here }];
  const before = process.env['BENCH_PLAN_BEFORE'];
  if (before) trees.push({ label: 'before', dir: before.replace(/\/$/, '') });
  const sizes = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
  const reps = Number(process.env['BENCH_REPS'] ?? 7);
  const run = (dir: string, n: number): Result => {
    const r = spawnSync(process.execPath, ['--max-semi-space-size=2', import.meta.filename, '--child', dir, String(n)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`planning in ${dir} at ${n} services failed (exit ${r.status ?? r.signal})`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Result;
  };
  for (const n of sizes) {
    const results = new Map(trees.map((t) => [t, [] as Result[]]));
    for (let k = 0; k < reps; k++) {
      for (const t of rotate(trees, k)) results.get(t)!.push(run(t.dir, n));
      const shas = new Set(trees.map((t) => results.get(t)!.at(-1)!.sha));
      if (shas.size > 1) throw new Error(`the trees wrote different restore texts at ${n} services`);
    }
    console.log(`\n${n.toLocaleString('en')} services x 5 endpoints: render + planSync + restore texts, ms, median (min-max) of ${reps} processes`);
    for (const way of WAYS) {
      console.log(`  ${LABELS[way]}:`);
      for (const t of trees) {
        const rs = results.get(t)!;
        console.log(`    ${t.label.padEnd(30)} wall ${fmt(summarize(rs.map((r) => r[way].wall)))}  CPU ${fmt(summarize(rs.map((r) => r[way].cpu)))}`);
      }
      if (trees.length === 2) {
        const [a, b] = trees.map((t) => results.get(t)!);
        const ratio = (f: (r: Result) => number) => fmt(summarize(pairedRatios(a!.map(f), b!.map(f))), 2);
        console.log(`    ${'after / before, per repetition'.padEnd(30)} wall ${ratio((r) => r[way].wall)}  CPU ${ratio((r) => r[way].cpu)}`);
      }
    }
  }
}
