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
import { createHash } from 'node:crypto';
import type { NftRenderOptions } from '../nftables/render.ts';
import { DETECT_LOCAL, makeCluster, snapshotOf } from './mode-cluster.ts';
import { runPlanBench, timeMedian, type PlanResult } from './plan-trees.ts';

const ITERATIONS = 3;
const options: NftRenderOptions = { masqueradeBit: 14, masqueradeAll: false, detectLocal: DETECT_LOCAL, nodePortAddresses: [] };

/** Per way: median wall and CPU of ITERATIONS plans, ms. */
type Result = PlanResult<'warm' | 'cold'>;

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
    return timeMedian(ITERATIONS, () => plan(warm));
  };
  const warm = way(true);
  const cold = way(false);
  return { warm, cold, sha: createHash('sha256').update(text).digest('hex') };
}

await runPlanBench({
  script: import.meta.filename,
  child,
  ways: { warm: 'warm render cache (a periodic full sync)', cold: 'new render cache' },
  timed: 'render + planFullSync',
  wrote: 'transactions',
});
