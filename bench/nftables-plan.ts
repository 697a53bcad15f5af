/**
 * CPU of planning a full nftables sync (no root, no nft): render + planFullSync
 * of the bench cluster (bench/mode-cluster.ts: N services x 5 endpoints) over
 * a table that holds exactly what the render wants (its names listed). Two
 * ways: with a warm render cache and the previous sync's state (what the mode
 * does on a periodic or requested full sync), and with a new render cache
 * (every service port rendered again, as after a changed node setting).
 * Run: `node bench/nftables-plan.ts` (BENCH_SIZES, default 1000,10000;
 * BENCH_REPS, default 7).
 *
 * Each repetition runs in a child process of its own (the agent's
 * `--max-semi-space-size=2`), so one tree's garbage is not collected on the
 * other's time; a child plans ITERATIONS times each way after one untimed
 * plan and reports the median. BENCH_PLAN_BEFORE=<dir of another checkout>
 * runs that checkout's renderer and planner too, interleaved with this
 * tree's (A B, B A, ...), checks that both wrote the same text (SHA-256), and
 * prints the per-repetition ratio after / before. Figures: median (min-max)
 * over the repetitions of wall time and process CPU (user + system).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { NftRenderOptions } from '../nftables/render.ts';
import { DETECT_LOCAL, makeCluster, snapshotOf } from './mode-cluster.ts';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

const ITERATIONS = 3;
const options: NftRenderOptions = { masqueradeBit: 14, masqueradeAll: false, detectLocal: DETECT_LOCAL, nodePortAddresses: [] };

interface Result {
  /** Per way: median wall and CPU of ITERATIONS plans, ms. */
  readonly warm: { wall: number; cpu: number };
  readonly cold: { wall: number; cpu: number };
  readonly sha: string;
}

async function child(dir: string, n: number): Promise<Result> {
  const R = (await import(`${dir}/nftables/render.ts`)) as typeof import('../nftables/render.ts');
  const F = (await import(`${dir}/nftables/full-sync.ts`)) as typeof import('../nftables/full-sync.ts');
  const snapshot = snapshotOf(makeCluster(n));
  const first = R.renderNftables(snapshot, options);
  const live = {
    chains: [...first.fixed.chains.map((c) => c.name), ...first.services.flatMap((s) => s.chains.map((c) => c.name))],
    sets: first.fixed.sets.map((s) => ({ name: s.name, kind: s.kind })),
  };
  const cache = new R.NftRenderCache();
  let previous: ReturnType<typeof F.planFullSync>['next'] | null = null;
  let now = 10_000;
  let text = '';
  const plan = (warm: boolean) => {
    const render = R.renderNftables(snapshot, options, warm ? cache : new R.NftRenderCache());
    const p = F.planFullSync(render, { now: (now += 10), live, recreateBaseChains: false, previous });
    previous = p.next;
    text = p.text;
  };
  const way = (warm: boolean) => {
    plan(warm); // untimed: fills the cache and the previous state
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      plan(warm);
      walls.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
    }
    return { wall: summarize(walls).median, cpu: summarize(cpus).median };
  };
  const warm = way(true);
  const cold = way(false);
  return { warm, cold, sha: createHash('sha256').update(text).digest('hex') };
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
      if (shas.size > 1) throw new Error(`the trees wrote different transactions at ${n} services`);
    }
    console.log(`\n${n.toLocaleString('en')} services x 5 endpoints: render + planFullSync, ms, median (min-max) of ${reps} processes`);
    for (const way of ['warm', 'cold'] as const) {
      console.log(`  ${way === 'warm' ? 'warm render cache (a periodic full sync)' : 'new render cache'}:`);
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
