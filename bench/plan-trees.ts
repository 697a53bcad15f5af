/**
 * The driver both plan benches share (bench/iptables-plan.ts,
 * bench/nftables-plan.ts): each repetition in a child process of its own
 * (the agent's `--max-semi-space-size=2`, so one tree's garbage is not
 * collected on the other's time), this tree and BENCH_PLAN_BEFORE's
 * interleaved (A B, B A, ...), the texts each wrote compared by SHA-256,
 * figures printed as median (min-max) with the per-repetition ratio
 * after / before. BENCH_SIZES (default 1000,10000), BENCH_REPS (default 7).
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

export interface Timing {
  /** Median wall and CPU (user + system) time, ms. */
  readonly wall: number;
  readonly cpu: number;
}

export type PlanResult<W extends string> = Record<W, Timing> & { readonly sha: string };

/** Median wall and CPU time of `iterations` calls of `fn`. */
export function timeMedian(iterations: number, fn: () => void): Timing {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  return { wall: summarize(walls).median, cpu: summarize(cpus).median };
}

export interface PlanBench<W extends string> {
  /** The bench script itself (import.meta.filename): run again as `--child DIR N`. */
  readonly script: string;
  /** Plans in the checkout at `dir` (its modules imported from there) for N services. */
  readonly child: (dir: string, n: number) => Promise<PlanResult<W>>;
  /** Each way measured, and how it is printed. */
  readonly ways: Readonly<Record<W, string>>;
  /** What is timed, for the heading (e.g. "render + planFullSync"). */
  readonly timed: string;
  /** What the trees must write alike (e.g. "restore texts"). */
  readonly wrote: string;
}

export async function runPlanBench<W extends string>(b: PlanBench<W>): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    console.log(JSON.stringify(await b.child(args[1]!, Number(args[2]))));
    return;
  }
  const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
  const trees = [{ label: 'this tree', dir: here }];
  const before = process.env['BENCH_PLAN_BEFORE'];
  if (before) trees.push({ label: 'before', dir: before.replace(/\/$/, '') });
  const sizes = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
  const reps = Number(process.env['BENCH_REPS'] ?? 7);
  const run = (dir: string, n: number): PlanResult<W> => {
    const r = spawnSync(process.execPath, ['--max-semi-space-size=2', b.script, '--child', dir, String(n)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`planning in ${dir} at ${n} services failed (exit ${r.status ?? r.signal})`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as PlanResult<W>;
  };
  for (const n of sizes) {
    const results = new Map(trees.map((t) => [t, [] as PlanResult<W>[]]));
    for (let k = 0; k < reps; k++) {
      for (const t of rotate(trees, k)) results.get(t)!.push(run(t.dir, n));
      const shas = new Set(trees.map((t) => results.get(t)!.at(-1)!.sha));
      if (shas.size > 1) throw new Error(`the trees wrote different ${b.wrote} at ${n} services`);
    }
    console.log(`\n${n.toLocaleString('en')} services x 5 endpoints: ${b.timed}, ms, median (min-max) of ${reps} processes`);
    for (const way of Object.keys(b.ways) as W[]) {
      console.log(`  ${b.ways[way]}:`);
      for (const t of trees) {
        const rs = results.get(t)!;
        console.log(`    ${t.label.padEnd(30)} wall ${fmt(summarize(rs.map((r) => r[way].wall)))}  CPU ${fmt(summarize(rs.map((r) => r[way].cpu)))}`);
      }
      if (trees.length === 2) {
        const [a, c] = trees.map((t) => results.get(t)!);
        const ratio = (f: (r: PlanResult<W>) => number) => fmt(summarize(pairedRatios(a!.map(f), c!.map(f))), 2);
        console.log(`    ${'after / before, per repetition'.padEnd(30)} wall ${ratio((r) => r[way].wall)}  CPU ${ratio((r) => r[way].cpu)}`);
      }
    }
  }
}
