/**
 * Figures for the nftables core at 1,000 and 10,000 services with 5 endpoints
 * each (run: `npm run bench:nftables`, as root). The script re-runs itself in
 * a private network namespace (`unshare --net`), refuses to go on if it still
 * sees the host's, and runs nft there directly, as the agent would (no `ip
 * netns exec` per command). Every timed step is repeated (REPS, interleaved
 * A B A B ...); a line gives the median and the range, a ratio is computed per
 * pair and then summarised. Per size:
 *   - render (snapshot -> table model), cold and with the render cache;
 *   - cold start in chunks of whole service ports (cold-start.ts), once;
 *   - one endpoint changed (render + plan + apply), three ways: through the
 *     NftSession (nft -i, block form), `nft -f` per transaction (block form),
 *     `nft -f` of the same operations one per line as knftables writes them
 *     (`add rule`, `add element`: the form before this change);
 *   - a service added, deleted, and its chains deleted a second later, through
 *     the session (deletes make nft load its whole cache);
 *   - the kernel's validation: a new chain nothing jumps to, one rule ending
 *     in a counter or in a jump, alternating (the jump makes the commit
 *     validate the whole table, the floor of every endpoint change), with
 *     upstream's two base chains that reach the services and with one;
 *   - listing the table back.
 * A restart's first sync over the loaded table, every chain rewritten or the
 * endpoint chains kept (upstream epChainSkipUpdate), alternating, at 1,000
 * and 3,000 services.
 * The full sync over the loaded table, one transaction (list names + render +
 * plan + apply, against `nft -f` of the same text alone: the floor), runs at
 * 1,000 and at 3,000 services; at 10,000 one takes about a minute (kernel:
 * anonymous sets x sets in the table, see full-sync.ts), so its time there is
 * extrapolated from 3,000 with the square of the size, and said so.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { planColdStart } from '../nftables/cold-start.ts';
import { planFullSync } from '../nftables/full-sync.ts';
import { Nft } from '../nftables/nft.ts';
import { NftSession } from '../nftables/nft-session.ts';
import { parseNftJson } from '../nftables/parse-json.ts';
import { planPartialSync } from '../nftables/partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRenderOptions } from '../nftables/render.ts';
import { operationLines } from '../nftables/script.ts';
import type { AppliedState } from '../nftables/sync-state.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import type { Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNftLauncher } from '../src/system/nft-launcher.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';
import { inOwnNetworkNamespace } from './own-netns.ts';

inOwnNetworkNamespace(import.meta.filename, 'run nft');

const REPS = 7;
const FULL_REPS = 5;
const NODE = 'bench-node';
const options: NftRenderOptions = {
  masqueradeBit: 14,
  masqueradeAll: false,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
  nodePortAddresses: [],
};
const exec = createExecaRunner();
const fork = new Nft(exec);
const session = new NftSession(createNftLauncher());
const viaSession = new Nft(exec, { session });

const slice = (i: number, first = 1) =>
  makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
    endpoints: Array.from({ length: 5 }, (_, j) => ({ ip: `10.${(i >> 8) & 255}.${i & 255}.${j + first}`, nodeName: j === 0 ? NODE : 'other' })),
    ports: [{ name: 'p80', port: 8080 }],
  });
const service = (i: number) =>
  makeService('bench', `svc-${i}`, {
    clusterIP: `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    ports: [{ name: 'p80', port: 80, targetPort: 8080 }],
  });
const snapshotOf = (services: unknown[], slices: unknown[]): Snapshot =>
  buildSnapshots(
    { services, slices, node: makeNode(NODE, { addresses: ['192.168.0.2'] }) },
    { nodeName: NODE, families: ['IPv4'], features: { preferSameTrafficDistribution: true } },
  ).snapshots[0]!;

/** `next` with the service port objects of `base` wherever their content is the same (the render cache keys on identity). */
function withServices(base: Snapshot, next: Snapshot): Snapshot {
  const key = (s: Snapshot['services'][number]) => `${s.service.key}/${s.service.protocol}`;
  const old = new Map(base.services.map((s) => [key(s), s]));
  const same = (s: Snapshot['services'][number]) => {
    const o = old.get(key(s));
    return o !== undefined && JSON.stringify(o) === JSON.stringify(s) ? o : s;
  };
  return { ...next, services: next.services.map(same) };
}

const ms = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (v: readonly number[], unit = ' ms'): string =>
  `median ${fmt(median(v))}${unit} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))}, n=${v.length})`;
const ratios = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x / b[i]!);
const ratio = (v: readonly number[]): string => `median ${median(v).toFixed(3)} (${Math.min(...v).toFixed(3)}–${Math.max(...v).toFixed(3)})`;
const line = (label: string, text: string) => console.log(`  ${label.padEnd(46)} ${text}`);

interface Cluster {
  readonly n: number;
  /** The loaded state; other states reuse its service port objects where unchanged, as the proxier does. */
  readonly base: Snapshot;
  readonly slices: unknown[];
  readonly services: unknown[];
  readonly cache: NftRenderCache;
  applied: AppliedState;
  now: number;
}

/** Render + plan + apply of a partial sync to `snapshot` (through `nft`, the text optionally rewritten). */
async function partial(
  c: Cluster,
  snapshot: Snapshot,
  nft: Nft,
  rewrite: (t: string) => string = (t) => t,
): Promise<{ ms: number; bytes: number; ops: number; cleanup: string }> {
  c.now += 10;
  let bytes = 0;
  let ops = 0;
  let cleanup = '';
  const t = await ms(async () => {
    const plan = planPartialSync(renderNftables(snapshot, options, c.cache), c.applied, c.now);
    const text = rewrite(plan.text);
    await nft.run(text);
    [bytes, ops, cleanup, c.applied] = [Buffer.byteLength(text), plan.operations, plan.cleanup, plan.next];
  });
  return { ms: t, bytes, ops, cleanup };
}

async function load(n: number): Promise<Cluster> {
  const slices = Array.from({ length: n }, (_, i) => slice(i));
  const services = Array.from({ length: n }, (_, i) => service(i));
  const cache = new NftRenderCache();
  await fork.deleteTable('ip');
  const snapshot = snapshotOf(services, slices);
  const coldRender = await ms(() => renderNftables(snapshot, options));
  const render = renderNftables(snapshot, options, cache);
  const cached = [];
  for (let i = 0; i < REPS; i++) cached.push(await ms(() => renderNftables(snapshot, options, cache)));
  let plan = planColdStart(render);
  const planMs = await ms(() => (plan = planColdStart(render)));
  const loadMs = await ms(async () => {
    for (const t of [plan.text, ...plan.more]) await fork.run(t);
  });
  const chains = render.services.reduce((a, s) => a + s.chains.length, 0);
  console.log(
    `\n${n.toLocaleString('en')} services x 5 endpoints (${chains.toLocaleString('en')} per-service chains; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs)`,
  );
  line('render, cold (once)', `${fmt(coldRender)} ms`);
  line('render, with the render cache', spread(cached));
  line(
    'cold start (once)',
    `plan ${fmt(planMs)} ms, ${1 + plan.more.length} transactions, ${plan.operations.toLocaleString('en')} operations; nft -f ${fmt(loadMs)} ms`,
  );
  return { n, base: snapshot, slices, services, cache, applied: plan.next, now: 10_000 };
}

/** One endpoint set replaced and back, three ways, interleaved. Returns the session's times. */
async function endpointChange(c: Cluster): Promise<number[]> {
  const k = Math.floor(c.n / 2);
  const states = [
    withServices(
      c.base,
      snapshotOf(
        c.services,
        c.slices.map((s, i) => (i === k ? slice(i, 100) : s)),
      ),
    ),
    c.base,
  ];
  const knftables = (t: string) => (t === '' ? '' : operationLines(t).join('\n') + '\n');
  const ways = [
    { label: 'nft -i session, block form (this change)', nft: viaSession, rewrite: undefined, times: [] as number[] },
    { label: 'nft -f per transaction, block form', nft: fork, rewrite: undefined, times: [] as number[] },
    { label: 'nft -f, one operation per line (before)', nft: fork, rewrite: knftables, times: [] as number[] },
  ];
  let shape = '';
  for (let i = 0; i < REPS; i++) {
    for (const w of ways) {
      const r = await partial(c, states[(i * ways.length + ways.indexOf(w)) % 2]!, w.nft, w.rewrite);
      w.times.push(r.ms);
      if (w === ways[0]) shape = `${r.bytes} bytes, ${r.ops} operations`;
    }
  }
  await partial(c, states[1]!, viaSession); // back to the loaded state, untimed
  console.log(`  one endpoint set replaced (render + plan + apply; ${shape}):`);
  for (const w of ways) line(`  ${w.label}`, spread(w.times));
  line('  session / one-per-line, per pair', ratio(ratios(ways[0]!.times, ways[2]!.times)));
  return ways[0]!.times;
}

/**
 * What the kernel's validation costs: a new chain that nothing jumps to, with
 * one rule, through the session, in two forms alternating: the rule ends in a
 * counter, or in `jump mark-for-masquerade`. The jump makes the commit
 * validate the whole table from its base chains (nf_tables_validate), although
 * the new chain is not reachable from any of them; every endpoint change adds
 * such rules (dnat, jump, numgen vmap). The kernel walks from each base chain
 * on its own, with no memory of chains already walked, and upstream's ruleset
 * reaches `services` (and through it every service and endpoint chain) from
 * two: nat-prerouting and nat-output. The same pairs are measured again with
 * nat-output's `jump services` taken out (then put back, untimed), which
 * shows the share of one walk. The scratch chains are deleted after (untimed).
 */
async function validation(): Promise<void> {
  const names: string[] = [];
  const pairs = async (tag: string) => {
    const times = { counter: [] as number[], jump: [] as number[] };
    const extra: number[] = [];
    for (let i = 0; i < REPS; i++) {
      for (const verdict of i % 2 ? (['jump', 'counter'] as const) : (['counter', 'jump'] as const)) {
        const name = `scratch-${tag}-${verdict}-${i}`;
        names.push(name);
        const rule = `ip daddr 192.0.2.${i + 1} ${verdict === 'jump' ? 'jump mark-for-masquerade' : 'counter'}`;
        times[verdict].push(await ms(() => viaSession.run(`add chain ip kube-proxy ${name} { ${rule} ; }\n`)));
      }
      extra.push(times.jump.at(-1)! - times.counter.at(-1)!);
    }
    return { ...times, extra };
  };
  const both = await pairs('a');
  const natOutput = 'chain ip kube-proxy nat-output';
  await viaSession.run(`flush ${natOutput}\n`);
  const one = await pairs('b');
  await viaSession.run(`add rule ip kube-proxy nat-output jump services\n`);
  await viaSession.run(names.map((n) => `delete chain ip kube-proxy ${n}`).join('\n') + '\n');
  console.log("  a new chain nothing jumps to, one rule (the kernel's validation):");
  line('  ends in counter (no validation)', spread(both.counter));
  line('  ends in jump (validates the whole table)', spread(both.jump));
  line('  jump - counter, per pair', spread(both.extra));
  line('  the same, nat-output not jumping to services', spread(one.extra));
  line('  one walk of services / both, per pair', ratio(ratios(one.extra, both.extra)));
}

/** A service added, then deleted, then its chains deleted (the cleanup a second later), through the session. */
async function serviceChurn(c: Cluster): Promise<void> {
  const extra = c.n;
  const withIt = withServices(c.base, snapshotOf([...c.services, service(extra)], [...c.slices, slice(extra)]));
  const without = c.base;
  const [add, del, cleanup] = [[], [], []] as number[][];
  for (let i = 0; i < REPS; i++) {
    add!.push((await partial(c, withIt, viaSession)).ms);
    del!.push((await partial(c, without, viaSession)).ms);
    c.now += 1000;
    const later = await partial(c, without, viaSession);
    cleanup!.push(await ms(() => viaSession.run(later.cleanup)));
  }
  console.log('  a service added and deleted (session):');
  line('  added (chain and element blocks)', spread(add!));
  line('  deleted (delete element: nft loads its cache)', spread(del!));
  line('  its chains deleted a second later (cleanup)', spread(cleanup!));
}

/** Full syncs over the loaded table, one transaction each, against nft -f of the same text alone. */
async function fullSync(c: Cluster): Promise<number[]> {
  const snapshot = c.base;
  const [total, floor, listing, compute] = [[], [], [], []] as number[][];
  let shape = '';
  for (let i = 0; i < FULL_REPS; i++) {
    let text = '';
    total!.push(
      await ms(async () => {
        let live: Awaited<ReturnType<Nft['listNames']>> = null;
        listing!.push(await ms(async () => (live = await fork.listNames('ip'))));
        compute!.push(
          await ms(() => {
            const plan = planFullSync(renderNftables(snapshot, options, new NftRenderCache()), {
              now: (c.now += 10),
              live,
              recreateBaseChains: false,
              previous: c.applied,
            });
            [text, c.applied] = [plan.text, plan.next];
            shape = `${(Buffer.byteLength(text) / 1048576).toFixed(1)} MiB, ${plan.operations.toLocaleString('en')} operations`;
          }),
        );
        await viaSession.run(text);
      }),
    );
    floor!.push(await ms(() => fork.run(text)));
  }
  console.log(`  full sync over the table, one transaction (${shape}):`);
  line('  list names + render + plan + apply', spread(total!));
  line('    of which list names / render + plan', `${spread(listing!)} / ${spread(compute!)}`);
  line('  floor: nft -f of the same text alone', spread(floor!));
  line('  full sync / floor, per pair', ratio(ratios(total!, floor!)));
  return total!;
}

/**
 * A restarted process's first sync over the loaded table (base chains re-created), two ways, alternating: every chain
 * rewritten, or the endpoint chains the listing shows kept (keepEndpoints, upstream epChainSkipUpdate).
 */
async function restart(c: Cluster): Promise<void> {
  const render = renderNftables(c.base, options, new NftRenderCache());
  const times = { all: [] as number[], keep: [] as number[] };
  const shape = { all: '', keep: '' };
  for (let i = 0; i < FULL_REPS; i++) {
    for (const way of i % 2 === 0 ? (['all', 'keep'] as const) : (['keep', 'all'] as const)) {
      times[way].push(
        await ms(async () => {
          const live = await fork.listNames('ip');
          const plan = planFullSync(render, {
            now: (c.now += 10),
            live,
            recreateBaseChains: true,
            keepEndpoints: way === 'keep',
            previous: c.applied,
          });
          c.applied = plan.next;
          shape[way] = `${(Buffer.byteLength(plan.text) / 1048576).toFixed(1)} MiB, ${plan.operations.toLocaleString('en')} operations`;
          await viaSession.run(plan.text);
        }),
      );
    }
  }
  console.log('  a restart: the first full sync of a new process (list names + plan + apply through the session):');
  line(`  every chain rewritten (${shape.all})`, spread(times.all));
  line(`  endpoint chains kept (${shape.keep})`, spread(times.keep));
  line('  kept / rewritten, per pair', ratio(ratios(times.keep, times.all)));
}

async function listBack(c: Cluster): Promise<void> {
  const names = await ms(() => fork.listNames('ip'));
  if (c.n > 3000) return line('list back', `names (nft -j list chains/sets/maps) ${fmt(names)} ms; the whole table is not listed (~25 s at 10,000)`);
  let json = '';
  const listMs = await ms(async () => (json = (await fork.listJson('ip'))!));
  const parseMs = await ms(() => parseNftJson(json, 'ip'));
  line(
    'list back',
    `names ${fmt(names)} ms; nft -j list table ${fmt(listMs)} ms (${(json.length / 1048576).toFixed(1)} MiB), parse ${fmt(parseMs)} ms`,
  );
}

const started = performance.now();
try {
  const small = await load(1000);
  const partial1k = await endpointChange(small);
  await validation();
  await serviceChurn(small);
  const full1k = await fullSync(small);
  line('endpoint change / full sync (medians)', `${((median(partial1k) / median(full1k)) * 100).toFixed(2)} %`);
  await restart(small);
  await listBack(small);

  const mid = await load(3000);
  const full3k = await fullSync(mid);
  await restart(mid);
  await listBack(mid);

  const big = await load(10_000);
  const partial10k = await endpointChange(big);
  await validation();
  await serviceChurn(big);
  await listBack(big);
  const full10k = median(full3k) * (10_000 / 3000) ** 2;
  line('full sync, extrapolated from 3,000 (x size^2)', `~${(full10k / 1000).toFixed(0)} s (not measured in this run; a lower bound)`);
  line('endpoint change / full sync (extrapolated)', `${((median(partial10k) / full10k) * 100).toFixed(2)} %`);
} finally {
  await session.close();
  await fork.deleteTable('ip');
  console.log(`\n(run took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
