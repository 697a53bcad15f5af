/**
 * What --traffic-counters costs the nftables mode (run: `npm run
 * bench:counters`, as root), at 1,000 and 10,000 services with 5 endpoints
 * each, side by side with the flag off: the script re-runs itself in a
 * private network namespace and runs nft there, as the agent would. Each
 * repetition loads the table from nothing (the cold start in chunks, through
 * one `nft -i` session as the agent does), then applies endpoint changes
 * (render + plan + apply of a partial sync) and, with the flag, reads every
 * counter as the mode does every --traffic-counters-period (`nft -j reset
 * counters table ip kube-proxy` + parse + naming each from the render; also
 * what `top` costs a frame, through the agent's /debug/traffic) and with a
 * read-only listing (`nft -j list counters`, which loads nft's cache). Off
 * and on alternate (off, on, on, off, ...); ratios are taken per pair and
 * summarised as the median and range.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { planColdStart } from '../nftables/cold-start.ts';
import { counterOwners, counterReadings } from '../nftables/counters.ts';
import { Nft } from '../nftables/nft.ts';
import { NftSession } from '../nftables/nft-session.ts';
import { planPartialSync } from '../nftables/partial-sync.ts';
import { DEFAULT_NFT_OPTIONS, NftRenderCache, renderNftables, type NftRenderOptions } from '../nftables/render.ts';
import type { AppliedState } from '../nftables/sync-state.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import type { Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNftLauncher } from '../src/system/nft-launcher.ts';
import { BENCH_NODE, benchNode, benchService, benchSlice } from './cluster-objects.ts';
import { DETECT_LOCAL } from './mode-cluster.ts';
import { inOwnNetworkNamespace } from './own-netns.ts';
import { pairedRatios, summarize } from './stats.ts';

inOwnNetworkNamespace(import.meta.filename, 'run nft');

const REPS = 3;
const CHANGES = 7;
const base: NftRenderOptions = { ...DEFAULT_NFT_OPTIONS, detectLocal: DETECT_LOCAL };
const exec = createExecaRunner();
const fork = new Nft(exec);
const session = new NftSession(createNftLauncher());
const viaSession = new Nft(exec, { session });

/** Service i's slice with its first endpoint at another address (a rolling update's new pod). */
const moved = (i: number, k: number): Record<string, unknown> => {
  const slice = benchSlice(i) as { endpoints: { addresses: string[] }[] };
  slice.endpoints[0]!.addresses = [`10.${(i >> 8) & 255}.${i & 255}.${101 + (k % 2)}`];
  return slice;
};
const snapshotOf = (services: unknown[], slices: unknown[]): Snapshot =>
  buildSnapshots(
    { services, slices, node: benchNode() },
    { nodeName: BENCH_NODE, families: ['IPv4'], features: { preferSameTrafficDistribution: true } },
  ).snapshots[0]!;

const ms = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const median = (v: readonly number[]): number => summarize(v).median;
const show = (v: readonly number[], unit = ' ms', d = 1) => {
  const s = summarize(v);
  return `${s.median.toFixed(d)}${unit} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
};

interface Run {
  coldMs: number;
  coldBytes: number;
  partialMs: number;
  readMs: number | null;
  listMs: number | null;
  counters: number;
}

/** One repetition: the table from nothing, CHANGES endpoint changes, and (counting) CHANGES readings. */
async function once(n: number, counting: boolean): Promise<Run> {
  const options: NftRenderOptions = { ...base, trafficCounters: counting };
  const services = Array.from({ length: n }, (_, i) => benchService(i));
  const slices: unknown[] = Array.from({ length: n }, (_, i) => benchSlice(i));
  const cache = new NftRenderCache();
  await fork.deleteTable('ip');
  const first = snapshotOf(services, slices);
  let applied: AppliedState | null = null;
  let coldBytes = 0;
  const coldMs = await ms(async () => {
    const plan = planColdStart(renderNftables(first, options, cache));
    for (const t of [plan.text, ...plan.more]) {
      coldBytes += t.length;
      await viaSession.run(t);
    }
    applied = plan.next;
  });
  // Endpoint changes on services spread over the table, each one endpoint replaced, as a rolling update would.
  let previous = first;
  const partials: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const i = Math.floor(((k + 0.5) * n) / CHANGES);
    slices[i] = moved(i, k);
    const next = snapshotOf(services, slices);
    const old = new Map(previous.services.map((s) => [s.service.key, s]));
    const snapshot = {
      ...next,
      services: next.services.map((s) => (JSON.stringify(old.get(s.service.key)) === JSON.stringify(s) ? old.get(s.service.key)! : s)),
    };
    partials.push(
      await ms(async () => {
        const plan = planPartialSync(renderNftables(snapshot, options, cache), applied!, 10_000 * (k + 1));
        await viaSession.run(plan.text);
        applied = plan.next;
      }),
    );
    previous = snapshot;
  }
  let readMs: number | null = null;
  let listMs: number | null = null;
  let counters = 0;
  if (counting) {
    const render = renderNftables(previous, options, cache);
    const reads: number[] = [];
    const lists: number[] = [];
    for (let k = 0; k < CHANGES; k++) {
      // As the agent reads them every period and for /debug/traffic (reset: nft loads no cache), and a read-only listing.
      reads.push(
        await ms(async () => {
          const values = (await fork.counters('ip', { reset: true })) ?? [];
          counters = counterReadings(values, counterOwners(render)).length;
        }),
      );
      if (k < 3) lists.push(await ms(async () => fork.counters('ip')));
    }
    readMs = median(reads);
    listMs = median(lists);
  }
  return { coldMs, coldBytes, partialMs: median(partials), readMs, listMs, counters };
}

console.log(`nftables --traffic-counters, off against on (${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}), ${REPS} paired repetitions`);
for (const n of [1000, 10_000]) {
  const off: Run[] = [];
  const on: Run[] = [];
  for (let r = 0; r < REPS; r++) {
    // Alternating order: off-on, on-off, ...
    if (r % 2 === 0) {
      off.push(await once(n, false));
      on.push(await once(n, true));
    } else {
      on.push(await once(n, true));
      off.push(await once(n, false));
    }
  }
  const col = (runs: Run[], f: (r: Run) => number) => runs.map(f);
  console.log(`\n${n.toLocaleString('en')} services x 5 endpoints`);
  console.log(`  cold start (chunks through nft -i)          off ${show(col(off, (r) => r.coldMs))}   on ${show(col(on, (r) => r.coldMs))}`);
  console.log(
    `    on / off per pair                          ${show(
      pairedRatios(
        col(on, (r) => r.coldMs),
        col(off, (r) => r.coldMs),
      ),
      '',
      3,
    )}`,
  );
  console.log(
    `    transaction text                           off ${(off[0]!.coldBytes / 1e6).toFixed(2)} MB   on ${(on[0]!.coldBytes / 1e6).toFixed(2)} MB`,
  );
  console.log(
    `  endpoint change (median of ${CHANGES} per run)     off ${show(col(off, (r) => r.partialMs))}   on ${show(col(on, (r) => r.partialMs))}`,
  );
  console.log(
    `    on / off per pair                          ${show(
      pairedRatios(
        col(on, (r) => r.partialMs),
        col(off, (r) => r.partialMs),
      ),
      '',
      3,
    )}`,
  );
  console.log(`  the agent's reading (reset + parse + name)  ${show(col(on, (r) => r.readMs!))}, ${on[0]!.counters.toLocaleString('en')} counters`);
  console.log(`  a read-only listing (nft -j list counters)  ${show(col(on, (r) => r.listMs!))}`);
}
await session.close();
await fork.deleteTable('ip');
