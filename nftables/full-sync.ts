/**
 * A full sync as one transaction, like upstream's syncProxyRules with
 * needFullSync: setupNFTables (the table, base chains re-created once per
 * process so changed priorities apply, every fixed chain added and flushed,
 * the set and map declarations, nodeport-ips refilled or removed), then every
 * service port's chains written from scratch and every element re-added;
 * with keepEndpoints (upstream epChainSkipUpdate; the mode does not use it,
 * see nftables-mode.ts) endpoint chains already there are kept as they are.
 *
 * Each set and map is flushed explicitly: `flush table` would keep their
 * elements, and an element left pointing at a deleted service's chain makes
 * that chain's deletion fail with "Device or resource busy". Chains found in
 * the live table that nothing wants any more (per-service chains, the other
 * generation's fixed chain mark-for-masquerade, whose jumps are all flushed
 * or rewritten in the same transaction, and chains of older rulesets we do
 * not know) are flushed now and deleted by a later sync, at least 1 s after;
 * affinity and unknown sets (generation B's hairpin-connections under A) are
 * deleted at once.
 */
import type { NftChain, NftFamily } from './model.ts';
import type { LiveBaseChain } from './names-json.ts';
import { TABLE_COMMENT } from './model.ts';
import { AFFINITY_PREFIX, ENDPOINT_PREFIX } from './names.ts';
import { BASE_CHAINS, chainOwner, CONTAINERS, HAIRPIN_CONNECTIONS, NODEPORT_IPS, SERVICE_CONTAINERS } from './objects.ts';
import { PackedChain } from './packed-chain.ts';
import type { NftRender } from './render.ts';
import type { ServiceObjects } from './render-service.ts';
import { counterNames, desiredElements } from './render.ts';
import { chainsToDelete, declarations, desiredChainNames, elementOfId, stateFromRender, type AppliedState, type SyncPlan } from './sync-state.ts';
import { bySet, Transaction } from './transaction.ts';

/** Names of what the kernel's table holds (from a listing), for staleness; null when unknown. */
export interface LiveNames {
  readonly chains: readonly string[];
  readonly sets: readonly { readonly name: string; readonly kind: 'set' | 'map' }[];
  /** The base chains (those with a hook) as listed: type, hook, priority, policy; absent when not listed. */
  readonly baseChains?: readonly LiveBaseChain[];
  /** Named counters (--traffic-counters, counters.ts); absent when not listed. */
  readonly counters?: readonly string[];
}

export interface FullSyncInput {
  /** Milliseconds (any epoch; only differences matter). */
  readonly now: number;
  /** What the table holds now; null when it was not listed (then what `previous` wrote, if given, is taken as listed). */
  readonly live: LiveNames | null;
  /** Upstream deletes and re-creates the base chains on the first full sync of a process. */
  readonly recreateBaseChains: boolean;
  /**
   * Upstream epChainSkipUpdate, to make a restart cheap: endpoint chains the listing shows are kept, unflushed and
   * unwritten, when their affinity set is there exactly when the service has affinity. The chain's name holds the
   * service port, protocol and endpoint address, which fix its masquerade and DNAT rules; the affinity rule is the one
   * that can differ, and it names the set. Unsafe after a process that left stale chains flushed (the names do not
   * tell an empty chain): the mode does not use it; bench/nftables-core.ts measures what it would save.
   */
  readonly keepEndpoints?: boolean;
  /** The previous state, whose stale chains keep their age. */
  readonly previous?: AppliedState | null;
}

/**
 * The transaction deleting stale chains and stale elements (elementIds; run on its own, after the main one). With `counters` (--traffic-counters)
 * each endpoint chain's counter goes with it: added first, so that a chain written before counting was on (its
 * counter never made) does not fail the deletion.
 */
export function cleanupText(family: NftFamily, chains: readonly string[], counters = false, elements: readonly string[] = []): string {
  const tx = new Transaction(family);
  for (const [set, keys] of bySet(elements.map(elementOfId))) tx.deleteElements(set, keys);
  for (const c of chains) {
    tx.deleteChain(c);
    if (counters && c.startsWith(ENDPOINT_PREFIX)) {
      tx.addCounter(c);
      tx.deleteCounter(c);
    }
  }
  return tx.text();
}

/**
 * setupNFTables: the table, base chains (deleted and re-created once per
 * process), every fixed chain added and flushed, the fixed set and map
 * declarations, nodeport-ips flushed (or removed with match-all NodePorts).
 * The service-filled sets and maps are flushed later (flushServiceSets), after
 * the service chains' rules: see writeServices.
 */
export function writeSetup(tx: Transaction, render: NftRender, recreateBaseChains: boolean): void {
  tx.addTable(TABLE_COMMENT);
  if (recreateBaseChains) {
    for (const b of BASE_CHAINS) {
      tx.addChain({ name: b.name, base: null, comment: null });
      tx.deleteChain(b.name);
    }
  }
  for (const c of render.fixed.chains) {
    tx.addChain(c);
    tx.flushChain(c.name);
  }
  for (const s of render.fixed.sets) tx.addSet(s);
  if (render.nodePortsMatchAll) {
    // Add, then delete: deleting a set that is not there would fail the transaction.
    const row = CONTAINERS.find((r) => r.name === NODEPORT_IPS)!;
    tx.addSet({
      name: row.name,
      kind: row.kind,
      type: render.family === 'ip' ? 'ipv4_addr' : 'ipv6_addr',
      flags: [],
      timeout: null,
      comment: row.comment,
    });
    tx.deleteSet('set', NODEPORT_IPS);
  } else {
    tx.flushSet('set', NODEPORT_IPS);
  }
}

/** The sets and maps the services fill; generation B's hairpin-connections too when the render declares it. */
export function flushServiceSets(tx: Transaction, render: NftRender): void {
  for (const name of SERVICE_CONTAINERS) tx.flushSet(CONTAINERS.find((r) => r.name === name)!.kind, name);
  if (render.fixed.sets.some((s) => s.name === HAIRPIN_CONNECTIONS)) tx.flushSet('set', HAIRPIN_CONNECTIONS);
}

/**
 * Service ports' affinity sets, their chains (added unless `existing` says the
 * kernel has them; flushed if it may have them), then their rules in chain
 * blocks: first the chains whose rules hold an anonymous set (`numgen ...
 * vmap { }`, source ranges), then the rest.
 *
 * Why that order: binding an anonymous set makes the kernel walk the whole
 * transaction so far (__nft_set_trans_bind, Linux 6.18), so a transaction
 * costs (anonymous sets) x (operations before each). Written early, each walk
 * passes only the service chains before it instead of every chain, flush and
 * element of the table. `existing` null: nothing is known, every chain is added
 * and flushed.
 */
export function writeServices(
  tx: Transaction,
  services: readonly ServiceObjects[],
  existing: ReadonlySet<string> | null,
  keep: ((svc: ServiceObjects, c: NftChain) => boolean) | null = null,
): void {
  for (const svc of services) for (const set of svc.affinitySets) tx.addSet(set);
  for (const svc of services) for (const c of svc.chains) if (existing === null || !existing.has(c.name)) tx.addChain(c);
  const later: NftChain[] = [];
  const write = (c: NftChain) => {
    if (existing === null || existing.has(c.name)) tx.flushChain(c.name);
    tx.addChainRules(c);
  };
  for (const svc of services) {
    for (const c of svc.chains) {
      if (keep?.(svc, c)) continue;
      if (chainHoldsAnonymousSet(c)) write(c);
      else later.push(c);
    }
  }
  for (const c of later) write(c);
}

/** keepEndpoints: an endpoint chain the table has, with its affinity set there exactly when the service has affinity. */
function endpointKeeper(live: LiveNames): (svc: ServiceObjects, c: NftChain) => boolean {
  const chains = new Set(live.chains);
  const sets = new Set(live.sets.filter((s) => s.kind === 'set' && s.name.startsWith(AFFINITY_PREFIX)).map((s) => s.name));
  return (svc, c) =>
    c.name.startsWith(ENDPOINT_PREFIX) &&
    chains.has(c.name) &&
    svc.affinitySets.length > 0 === sets.has(AFFINITY_PREFIX + c.name.slice(ENDPOINT_PREFIX.length));
}

/** `numgen ... vmap { }`, `ip saddr != { }`: braces other than `update @set { ip saddr }`. */
export const holdsAnonymousSet = (rule: string): boolean => rule.includes('{') && rule.replace(/update @\S+ \{[^}]*\}/g, '').includes('{');

/**
 * Whether any rule of the chain holds an anonymous set. A packed chain's text is tested whole: the update clauses
 * removed each lie within one rule (`\S+` and `[^}]*` stop at that rule's own closing brace), so a brace left is
 * some rule's.
 */
function chainHoldsAnonymousSet(c: NftChain): boolean {
  return c instanceof PackedChain ? holdsAnonymousSet(c.text) : c.rules.some(holdsAnonymousSet);
}

export function writeFixedRules(tx: Transaction, render: NftRender): void {
  for (const c of render.fixed.chains) tx.addRules(c.name, c.rules);
}

/** The chains (stale ones included) and sets an applied state says the kernel holds. */
function writtenNames(applied: AppliedState): LiveNames {
  const chains = [...applied.fixed.chains.map((c) => c.name), ...applied.stale.keys()];
  const sets: { name: string; kind: 'set' | 'map' }[] = applied.fixed.sets.map((s) => ({ name: s.name, kind: s.kind }));
  for (const svc of applied.services.values()) {
    for (const c of svc.chains) chains.push(c.name);
    for (const s of svc.affinitySets) sets.push({ name: s.name, kind: s.kind });
  }
  return { chains, sets };
}

export function planFullSync(render: NftRender, input: FullSyncInput): SyncPlan {
  // The fixed chains too: a stale one of the other generation (mark-for-masquerade) may be wanted again.
  const wanted = desiredChainNames(render);
  for (const c of render.fixed.chains) wanted.add(c.name);
  const oldStale = input.previous?.stale ?? new Map<string, number>();
  // Without a listing (a partial sync turned full: a generation change, a base chain changed), the kernel holds what
  // the previous state wrote: its chains and sets nothing wants now are flushed or deleted as listed ones would be.
  const known = input.live ?? (input.previous ? writtenNames(input.previous) : null);
  const liveChains = new Set(known?.chains ?? []);
  const cleanupChains = chainsToDelete(oldStale, input.now, wanted).filter((c) => known === null || liveChains.has(c));

  const tx = new Transaction(render.family, declarations(render));
  writeSetup(tx, render, input.recreateBaseChains);
  const keep = input.keepEndpoints && input.live !== null ? endpointKeeper(input.live) : null;
  writeServices(tx, render.services, input.live === null ? null : liveChains, keep);
  flushServiceSets(tx, render);
  for (const [set, elements] of desiredElements(render)) tx.addElements(set, [...elements.values()]);
  writeFixedRules(tx, render);

  const wantedSets = new Set<string>([NODEPORT_IPS, ...render.fixed.sets.map((s) => s.name)]);
  for (const svc of render.services) for (const set of svc.affinitySets) wantedSets.add(set.name);
  const stale = new Map<string, number>();
  const deleting = new Set(cleanupChains);
  for (const [name, since] of oldStale)
    if (!wanted.has(name) && !deleting.has(name) && (known === null || liveChains.has(name))) stale.set(name, since);
  for (const name of liveChains) {
    if (wanted.has(name) || deleting.has(name)) continue;
    if (chainOwner(name, render.generation) !== 'base' && chainOwner(name, render.generation) !== 'fixed') {
      tx.flushChain(name);
      if (!stale.has(name)) stale.set(name, input.now);
    }
  }
  for (const set of known?.sets ?? []) if (!wantedSets.has(set.name)) tx.deleteSet(set.kind, set.name);
  // Counters nothing counts into any more: every rule that did was flushed or rewritten above (a kept endpoint chain
  // still counts into its own).
  const wantedCounters = new Set(counterNames(render));
  for (const name of input.live?.counters ?? []) if (!wantedCounters.has(name) && !(keep !== null && liveChains.has(name))) tx.deleteCounter(name);

  return {
    full: true,
    cleanup: cleanupText(render.family, cleanupChains, render.counters),
    cleanupChains,
    cleanupElements: [],
    rewritten: null,
    addedElements: [],
    text: tx.text(),
    more: [],
    operations: tx.operations,
    next: stateFromRender(render, stale),
  };
}
