/**
 * The proxier's incremental path against the batch one: the agent folds
 * object events into per-service dirty marks and rebuilds only those
 * services (proxier/proxier.ts over state-builder.ts); `render`, `diff` and
 * `trace --objects` build every snapshot from the whole object set at once
 * (proxier/snapshot.ts). Two implementations of one function: for the same
 * objects they must give the same snapshots, whatever order the events came
 * in and wherever a sync looked in between.
 *
 * Each case takes a random, partly malformed cluster to another
 * (clusterPairArbitrary: the same services after some events, or another
 * cluster), with some slices relabelled to another Service, in a random
 * order of adds, updates and deletes, and compares at random points.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffRulesets, formatDiff } from '../iptables/diff.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset } from '../iptables/render.ts';
import { getChain } from '../iptables/ruleset.ts';
import { ManualClock } from '../proxier/clock.ts';
import type { ProxyMode, SyncReport } from '../proxier/mode.ts';
import type { ObjectKind } from '../proxier/object-store.ts';
import { Proxier } from '../proxier/proxier.ts';
import { objectKey, SERVICE_NAME_LABEL } from '../proxier/raw.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { featuresFrom, snapshotsFromObjects } from '../src/desired.ts';
import { parseObjects } from '../src/sources/parse-objects.ts';
import { makeNode, makeService } from './builders.ts';
import { clusterArbitrary, clusterPairArbitrary, FUZZ_NODE, type GenCluster } from './cluster-arbitrary.ts';
import { fuzzConfig, fuzzServiceCIDRs, shortReporter } from './fuzz-oracle.ts';

const SEED = 20261205;
const RUNS = 150;
const FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];
const KINDS: readonly ObjectKind[] = ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'];

type State = Map<ObjectKind, Map<string, unknown>>;

/** A mode that programs nothing: the proxier's runner is never started, only its snapshots are read. */
const idleMode: ProxyMode = {
  name: 'iptables',
  families: FAMILIES,
  sync: () => Promise.reject(new Error('not started')) as Promise<SyncReport>,
  requestFullSync: () => undefined,
  monitor: () => () => undefined,
  close: async () => undefined,
};

/** The objects of a cluster as a source would hold them: by kind and key, the last of a key winning, this node's Node only. */
function stateOf(c: GenCluster, relabel: readonly (number | undefined)[]): State {
  const parsed = parseObjects(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...c.objects, ...fuzzServiceCIDRs(c).objects] }), 'fuzz');
  const state: State = new Map(KINDS.map((k) => [k, new Map()]));
  const put = (kind: ObjectKind, obj: unknown): void => {
    const key = objectKey(obj);
    if (key !== null) state.get(kind)!.set(key, obj);
  };
  const services = parsed.services.map((s) => objectKey(s)).filter((k): k is string => k !== null);
  parsed.services.forEach((s) => put('Service', s));
  parsed.slices.forEach((s, i) => {
    // Some slices move to another Service (their service-name label changed), as a controller may do.
    const to = relabel[i] !== undefined && services.length > 0 ? services[relabel[i]! % services.length]! : null;
    if (to === null || typeof s !== 'object' || s === null) return put('EndpointSlice', s);
    const md = (s as { metadata?: { labels?: Record<string, string> } }).metadata ?? {};
    put('EndpointSlice', { ...s, metadata: { ...md, labels: { ...md.labels, [SERVICE_NAME_LABEL]: to.slice(to.indexOf('/') + 1) } } });
  });
  parsed.nodes.forEach((n) => objectKey(n)?.toLowerCase() === FUZZ_NODE.name && put('Node', n));
  (parsed.serviceCIDRs ?? []).forEach((x) => put('ServiceCIDR', x));
  return state;
}

/** The batch builder's snapshots of a state. */
function batch(state: State, flags: readonly string[]): Snapshot[] {
  const list = (k: ObjectKind) => [...state.get(k)!.values()];
  const objects = { services: list('Service'), slices: list('EndpointSlice'), nodes: list('Node'), serviceCIDRs: list('ServiceCIDR'), problems: [] };
  return [...snapshotsFromObjects(objects, fuzzConfig(flags), { families: FAMILIES }).snapshots];
}

/** The agent's proxier on the fuzz node with these flags, its runner never started: only its snapshots are read. */
const proxierFor = (flags: readonly string[]): Proxier =>
  new Proxier({
    mode: idleMode,
    builder: stateBuilder(FUZZ_NODE.name, featuresFrom(fuzzConfig(flags))),
    clock: new ManualClock(),
    minSyncPeriodMs: 0,
    syncPeriodMs: 30_000,
  });

interface Op {
  readonly kind: ObjectKind;
  readonly key: string;
  readonly obj: unknown;
  readonly type: (old: unknown) => string;
}

/** Where the incremental snapshots differ from the batch ones, in a few lines; null when they are equal. */
function difference(incremental: readonly Snapshot[], whole: readonly Snapshot[]): string | null {
  if (isDeepStrictEqual(incremental, whole)) return null;
  const out: string[] = [];
  for (let i = 0; i < Math.max(incremental.length, whole.length); i++) {
    const x = incremental[i];
    const y = whole[i];
    if (!x || !y) return `family ${i}: ${x ? 'only incremental' : 'only batch'}`;
    if (!isDeepStrictEqual(x.node, y.node)) out.push(`${x.family} node: ${JSON.stringify(x.node)} vs batch ${JSON.stringify(y.node)}`);
    if (!isDeepStrictEqual(x.serviceCIDRs, y.serviceCIDRs))
      out.push(`${x.family} serviceCIDRs: ${JSON.stringify(x.serviceCIDRs)} vs ${JSON.stringify(y.serviceCIDRs)}`);
    const keyOf = (s: Snapshot['services'][number]) => `${s.service.key}/${s.service.protocol}`;
    const byKey = new Map(y.services.map((s) => [keyOf(s), s]));
    const seen = new Set<string>();
    for (const s of x.services) {
      seen.add(keyOf(s));
      const other = byKey.get(keyOf(s));
      if (!other) out.push(`${x.family} ${keyOf(s)}: only incremental`);
      else if (!isDeepStrictEqual(s, other))
        out.push(`${x.family} ${keyOf(s)}: ${JSON.stringify(s).slice(0, 1500)}\n   batch: ${JSON.stringify(other).slice(0, 1500)}`);
    }
    for (const k of byKey.keys()) if (!seen.has(k)) out.push(`${x.family} ${k}: only batch`);
    if (out.length === 0)
      out.push(`${x.family}: services in another order: ${JSON.stringify(x.services.map(keyOf))} vs batch ${JSON.stringify(y.services.map(keyOf))}`);
  }
  return out.join('\n').slice(0, 5000);
}

/** The events that take one state to another: an add, update or delete per object that differs. */
function opsBetween(from: State, to: State): Op[] {
  const ops: Op[] = [];
  for (const kind of KINDS) {
    const a = from.get(kind)!;
    const b = to.get(kind)!;
    const type = (old: unknown) => (old === null ? 'add' : 'update');
    for (const [key, obj] of b) if (a.get(key) !== obj) ops.push({ kind, key, obj, type });
    for (const key of a.keys()) if (!b.has(key)) ops.push({ kind, key, obj: null, type: () => 'delete' });
  }
  return ops;
}

const scenario = fc.record({
  pair: fc.oneof(fc.tuple(clusterArbitrary, clusterArbitrary), clusterPairArbitrary),
  relabel: fc.array(fc.option(fc.nat(), { freq: 5, nil: undefined }), { maxLength: 20 }),
  order: fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
  looks: fc.array(fc.boolean(), { minLength: 200, maxLength: 200 }),
});

describe('the proxier folding events against the batch builder', () => {
  it(`builds the same snapshots from events in any order, with syncs looking in between (${RUNS} cluster pairs, seed ${SEED})`, async () => {
    const stats = { events: 0, looks: 0 };
    await fc.assert(
      fc.asyncProperty(scenario, async ({ pair: [a, b], relabel, order, looks }) => {
        const proxier = proxierFor(a.flags);
        const current: State = new Map(KINDS.map((k) => [k, new Map()]));
        let step = 0;
        const go = (to: State, name: string): void => {
          const ops = opsBetween(current, to)
            .map((op, i) => ({ op, at: order[i % order.length]! + i / 1000 }))
            .sort((x, y) => x.at - y.at)
            .map((x) => x.op);
          for (const op of ops) {
            const here = current.get(op.kind)!;
            const old = here.get(op.key) ?? null;
            if (op.obj === null) here.delete(op.key);
            else here.set(op.key, op.obj);
            proxier.onEvent({ type: op.obj === null ? 'delete' : old === null ? 'add' : 'update', kind: op.kind, key: op.key, old, obj: op.obj });
            stats.events++;
            if (looks[step++ % looks.length]) {
              stats.looks++;
              const d = difference(proxier.snapshots(), batch(current, a.flags));
              if (d) throw new Error(`after ${step} events (${name}), the last ${op.type(old)} ${op.kind} ${op.key}: ${d}`);
            }
          }
          const d = difference(proxier.snapshots(), batch(current, a.flags));
          if (d) throw new Error(`once at ${name}: ${d}`);
        };
        for (const kind of KINDS) proxier.onSynced(kind);
        go(stateOf(a, []), 'the first cluster');
        go(stateOf(b, relabel), 'the second cluster');
        go(stateOf(a, relabel.slice(3)), 'the first cluster again');
        await proxier.stop();
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (events): ${RUNS} cluster pairs, ${stats.events} events, ${stats.looks} snapshots compared mid-way`);
    expect(stats.looks).toBeGreaterThan(RUNS);
  }, 120_000);

  it('`diff` finds the rules the agent wrote converged when Service names share a prefix (web, web-admin): both paths order by Service', () => {
    // The batch path sorted by service port key ("ns/web-admin:http" < "ns/web:http"), the agent's proxier by Service
    // ("ns/web" < "ns/web-admin"): the filter table's KUBE-SERVICES, whose order `diff` checks, came out reversed, and
    // `diff` called a converged node drifted.
    const objects = [
      makeNode(FUZZ_NODE.name, { addresses: [FUZZ_NODE.ip] }),
      makeService('ns', 'web', { clusterIPs: ['172.30.0.10'], ports: [{ name: 'http', port: 80 }] }),
      makeService('ns', 'web-admin', { clusterIPs: ['172.30.0.11'], ports: [{ name: 'http', port: 80 }] }),
    ];
    const state: State = new Map(KINDS.map((k) => [k, new Map()]));
    const proxier = proxierFor([]);
    for (const obj of objects) {
      const kind = (obj as { kind: string }).kind as ObjectKind;
      state.get(kind)!.set(objectKey(obj)!, obj);
      proxier.onEvent({ type: 'add', kind, key: objectKey(obj)!, old: null, obj });
    }
    const agent = renderRuleset(proxier.snapshots()[0]!, DEFAULT_RENDER_OPTIONS).ruleset;
    const rendered = renderRuleset(batch(state, [])[0]!, DEFAULT_RENDER_OPTIONS).ruleset;
    const d = diffRulesets(rendered, agent);
    expect(d.identical, formatDiff(d)).toBe(true);
    expect(getChain(agent, 'filter', 'KUBE-SERVICES')!.rules.map((r) => /--comment "?(\S+?) /.exec(r)?.[1])).toEqual([
      'ns/web:http',
      'ns/web-admin:http',
    ]);
  });
});
