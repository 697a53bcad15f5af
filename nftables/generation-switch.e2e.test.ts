/**
 * Switching generations on a live table, in the kernel (needs root; each test
 * in a network namespace of its own): the nftables mode started with
 * generation B over the table an A agent wrote (and A over B's) must leave,
 * once its stale cleanup has run, exactly the table a B agent (an A agent)
 * writes on a node without one. The two listings are compared as nft's JSON
 * with handles dropped and chains, sets and elements sorted (the order the
 * kernel lists chains in is their order of creation); rules keep their order.
 * Upstream B keeps an A table's mark-for-masquerade chain (only names with a
 * "/" go stale in proxier.go @ 129058fc), unreferenced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../proxier/clock.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import { silentLogger } from '../proxier/log.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { planFullSync } from './full-sync.ts';
import { Nft } from './nft.ts';
import { NftablesMode } from './nftables-mode.ts';
import { planPartialSync } from './partial-sync.ts';
import { renderNftables } from './render.ts';
import type { SyncPlan } from './sync-state.ts';
import type { NftGeneration } from './objects.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptgsw';
let serial = 0;

beforeAll(async () => net.sweepNamespaces(PREFIX));
afterAll(async () => net.sweepNamespaces(PREFIX));

async function inNamespace<T>(fn: (exec: CommandRunner) => Promise<T>): Promise<T> {
  const ns = `${PREFIX}-${process.pid}-${serial++}`;
  await net.addNamespace(ns);
  try {
    return await fn(createExecaRunner({ netns: ns }));
  } finally {
    await net.deleteNamespace(ns);
  }
}

const nftFamily = (family: IPFamily) => (family === 'IPv4' ? 'ip' : 'ip6');

/** `nft -j list table`, comparable: no handles, chains and sets sorted, set elements sorted, rules in order per chain. */
async function listing(exec: CommandRunner, family: IPFamily): Promise<{ objects: string[]; rules: Record<string, string[]> }> {
  const out = (await exec.run('nft', ['-j', 'list', 'table', nftFamily(family), 'kube-proxy'])).stdout;
  const strip = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(strip)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (k === 'handle' ? [] : [[k, strip(x)]])))
        : v;
  const objects: string[] = [];
  const rules: Record<string, string[]> = {};
  for (const item of (JSON.parse(out) as { nftables: Record<string, Record<string, unknown>>[] }).nftables) {
    const [kind, body] = Object.entries(item)[0]!;
    if (kind === 'metainfo') continue;
    const o = strip(body) as Record<string, unknown>;
    if (kind === 'rule') (rules[o.chain as string] ??= []).push(JSON.stringify(o));
    else {
      if (Array.isArray(o.elem)) o.elem = o.elem.map((e) => JSON.stringify(e)).sort();
      objects.push(`${kind} ${JSON.stringify(o)}`);
    }
  }
  return { objects: objects.sort(), rules };
}

const text = async (exec: CommandRunner, family: IPFamily) => (await exec.run('nft', ['list', 'table', nftFamily(family), 'kube-proxy'])).stdout;

/** An agent's nftables mode of `generation` over the namespace's table, with its own clock. */
function agent(exec: CommandRunner, family: IPFamily, generation: NftGeneration) {
  const clock = new ManualClock(1_000_000);
  const mode = new NftablesMode(
    { families: [family], render: { ...shapesOptions(family), generation } },
    { nft: new Nft(exec), clock, logger: silentLogger() },
  );
  const sync = (snapshot: Snapshot, periodic = false) => mode.sync(snapshot, { periodic, previous: null });
  return { clock, mode, sync };
}

describe('switching generations on a live table, in the kernel', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const [from, to, gone] of [
      ['A', 'B', 'mark-for-masquerade'],
      ['B', 'A', 'hairpin-connections'],
    ] as const) {
      it(`${family}: ${to} over the table ${from} wrote ends, after the stale cleanup, as the table ${to} writes anew`, async () => {
        await inNamespace(async (exec) => {
          const snapshot = shapesSnapshot(family);
          const before = agent(exec, family, from);
          expect((await before.sync(snapshot)).full).toBe(true);
          await before.mode.close();
          expect(await text(exec, family)).toContain(gone);

          const after = agent(exec, family, to);
          expect((await after.sync(snapshot)).full).toBe(true);
          after.clock.advance(1000);
          expect((await after.sync(snapshot, true)).full).toBe(false); // nothing to write: the stale cleanup
          await after.mode.close();
          const switched = await listing(exec, family);
          expect(await text(exec, family)).not.toContain(gone);

          await exec.run('nft', ['delete', 'table', nftFamily(family), 'kube-proxy']);
          const fresh = agent(exec, family, to);
          await fresh.sync(snapshot);
          await fresh.mode.close();
          const anew = await listing(exec, family);
          expect(switched.objects).toEqual(anew.objects);
          expect(switched.rules).toEqual(anew.rules);
        });
      });
    }

    it(`${family}: A, then B over it, then A back within the second (a partial sync, so a full one): A's table, nothing deleted that A wants`, async () => {
      await inNamespace(async (exec) => {
        const nft = new Nft(exec);
        const snapshot = shapesSnapshot(family);
        const render = (generation: NftGeneration) => renderNftables(snapshot, { ...shapesOptions(family), generation });
        const apply = async (plan: SyncPlan) => {
          await nft.run(plan.text);
          if (plan.cleanup !== '') await nft.run(plan.cleanup);
          return plan.next;
        };
        let applied = await apply(planFullSync(render('A'), { now: 0, live: null, recreateBaseChains: true }));
        const live = await nft.listNames(nftFamily(family));
        applied = await apply(planFullSync(render('B'), { now: 100, live, recreateBaseChains: false, previous: applied }));
        expect([...applied.stale.keys()]).toContain('mark-for-masquerade');
        const back = planPartialSync(render('A'), applied, 500);
        expect(back.full).toBe(true);
        applied = await apply(back);
        applied = await apply(planPartialSync(render('A'), applied, 5000)); // deletes what B left stale and A does not want
        expect(applied.stale.size).toBe(0);
        const switched = await listing(exec, family);

        await exec.run('nft', ['delete', 'table', nftFamily(family), 'kube-proxy']);
        await apply(planFullSync(render('A'), { now: 0, live: null, recreateBaseChains: true }));
        const anew = await listing(exec, family);
        expect(switched.objects).toEqual(anew.objects);
        expect(switched.rules).toEqual(anew.rules);
      });
    });
  }
});
