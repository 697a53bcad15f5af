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
import { createHash } from 'node:crypto';
import type { Snapshot } from '../proxier/types.ts';
import { DETECT_LOCAL, makeCluster, snapshotOf, withoutOneEndpoint } from './mode-cluster.ts';
import { runPlanBench, timeMedian, type PlanResult } from './plan-trees.ts';

const ITERATIONS = 5;
type Way = 'full' | 'partial' | 'cold';
const LABELS: Record<Way, string> = {
  full: 'full sync, warm render cache',
  partial: 'partial sync, one endpoint',
  cold: 'full sync, new render cache',
};

type Result = PlanResult<Way>;

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
    return timeMedian(ITERATIONS, () => plan(way, false));
  };
  const full = measure('full');
  const partial = measure('partial');
  const cold = measure('cold');
  return { full, partial, cold, sha: hash.digest('hex') };
}

await runPlanBench({ script: import.meta.filename, child, ways: LABELS, timed: 'render + planSync + restore texts', wrote: 'restore texts' });
