/**
 * A partial sync: only what changed since the last applied state, in one
 * transaction. A chain whose rules changed is rewritten (add + flush + rules);
 * an unchanged service port (the very same ServiceObjects, thanks to the
 * render cache) costs one identity check. Set and map elements are diffed
 * key by key (add; delete; delete + add when the value changed). Chains
 * nothing wants any more are flushed now and deleted by a separate
 * transaction at least 1 s later, and so are generation B's hairpin-connections
 * elements (sync-state.ts DEFERRED_ELEMENT_SETS); affinity sets go at once.
 * Nothing changed: no text at all.
 *
 * Operation order inside the transaction: chains to rewrite are added and
 * flushed, stale chains flushed, elements deleted, sets deleted, sets added,
 * rules written (in chain blocks), elements added (in set blocks) — so every
 * reference points at something that exists when it is written, and nothing
 * deleted is still referenced. Without deletes nft needs no cache of the
 * table (transaction.ts): an endpoint change costs milliseconds in nft, and
 * the kernel's validation of the table is the rest.
 */
import { ElementChanges } from './element-store.ts';
import { LayeredMap } from './layered-map.ts';
import type { NftChain, NftSet } from './model.ts';
import { sameRules as sameChainRules } from '../proxier/packed-rules.ts';
import type { NftRender } from './render.ts';
import type { ServiceObjects } from './render-service.ts';
import { cleanupText, planFullSync } from './full-sync.ts';
import {
  chainsToDelete,
  DEFERRED_ELEMENT_SETS,
  elementId,
  elementOfId,
  fixedElements,
  sameRules,
  STALE_CHAIN_BATCH_MS,
  type AppliedState,
  type SyncPlan,
} from './sync-state.ts';
import { bySet, Transaction, type SetDecl } from './transaction.ts';

/**
 * Why a change cannot be expressed as a partial sync: base chain hooks or priorities changed, or the fixed chains
 * did (a generation change: a chain only the old generation has must be found and left to the stale cleanup).
 */
function needsFull(render: NftRender, applied: AppliedState): boolean {
  if (applied.family !== render.family) return true;
  if (applied.fixed.chains.length !== render.fixed.chains.length) return true;
  const before = new Map(applied.fixed.chains.map((c) => [c.name, c]));
  return render.fixed.chains.some((c) => JSON.stringify(before.get(c.name)?.base ?? null) !== JSON.stringify(c.base) || !before.has(c.name));
}

const sameSetDecl = (a: NftSet, b: NftSet): boolean =>
  a.kind === b.kind && a.type === b.type && a.timeout === b.timeout && a.comment === b.comment && sameRules(a.flags, b.flags);

export function planPartialSync(render: NftRender, applied: AppliedState, now: number): SyncPlan {
  if (needsFull(render, applied)) return planFullSync(render, { now, live: null, recreateBaseChains: true, previous: applied });

  const rewrite: NftChain[] = [];
  const flush: string[] = [];
  const setsToDelete: NftSet[] = [];
  const setsToAdd: NftSet[] = [];
  const elements = new ElementChanges(applied.elements);

  // Fixed chains and fixed set declarations (nodeport-ips comes and goes with --nodeport-addresses).
  const oldFixed = new Map(applied.fixed.chains.map((c) => [c.name, c]));
  for (const c of render.fixed.chains)
    if (!sameRules(oldFixed.get(c.name)!.rules, c.rules) || oldFixed.get(c.name)!.comment !== c.comment) rewrite.push(c);
  diffSets(applied.fixed.sets, render.fixed.sets, setsToDelete, setsToAdd);
  for (const s of setsToDelete) elements.dropSet(s.name);
  elements.replace(fixedElements(applied.fixed), fixedElements(render.fixed));

  // Service ports: identity first, then chain by chain. Chain names are unique per service port,
  // so a chain one port stops using is wanted by nobody else.
  const wanted = new Set<string>();
  // Only the ports that changed: the next state layers them over this one (layered-map.ts), not a new map of all.
  const changed = new Map<string, ServiceObjects | undefined>();
  // Sets the rewritten rules may name: the fixed ones and the changed ports' affinity sets.
  const decls: SetDecl[] = [...render.fixed.sets];
  // Keys are unique per snapshot (a service port and its protocol), so every applied key is current when all of them
  // were found: the removed ones are looked for only when some are.
  let kept = 0;
  for (let i = 0; i < render.services.length; i++) {
    const svc = render.services[i]!; // indexed: for-of allocated per service here
    const prev = applied.services.get(svc.key);
    if (prev !== undefined) kept++;
    if (prev === svc) continue;
    changed.set(svc.key, svc);
    decls.push(...svc.affinitySets);
    const oldChains = new Map((prev?.chains ?? []).map((c) => [c.name, c]));
    const recreated = diffSets(prev?.affinitySets ?? [], svc.affinitySets, setsToDelete, setsToAdd);
    for (const c of svc.chains) {
      wanted.add(c.name);
      const old = oldChains.get(c.name);
      // A re-created affinity set is still referenced by unchanged rules: rewrite them to release it.
      if (old === undefined || recreated || !sameChainRules(old, c)) rewrite.push(c);
    }
    for (const name of oldChains.keys()) if (!wanted.has(name)) flush.push(name);
    elements.replace(prev?.elements ?? [], svc.elements);
  }
  // Removed service ports, if any (a walk over every applied port only then: it is 10,000 at scale).
  if (kept < applied.services.size) {
    const current = new Set(render.services.map((s) => s.key));
    for (const [key, prev] of applied.services) {
      if (current.has(key)) continue;
      changed.set(key, undefined);
      for (const c of prev.chains) flush.push(c.name);
      diffSets(prev.affinitySets, [], setsToDelete, setsToAdd);
      elements.replace(prev.elements, []);
    }
  }

  const tx = new Transaction(render.family, decls);
  for (const c of rewrite) {
    tx.addChain(c);
    tx.flushChain(c.name);
  }
  for (const name of flush) tx.flushChain(name);
  const { deletes, adds } = elements.operations();
  const nextElements = elements.result(render.fixed.sets.map((s) => s.name));
  // An element of a deferred set (hairpin-connections) that nothing wants any more stays in the kernel for the stale
  // cleanup: its delete would make nft load its whole cache for the event's transaction (sync-state.ts).
  const deferred: string[] = [];
  const immediate: [string, string][] = [];
  for (const d of deletes) {
    if (DEFERRED_ELEMENT_SETS.has(d[0]) && !nextElements.get(d[0])!.has(d[1])) deferred.push(elementId(d[0], d[1]));
    else immediate.push(d);
  }
  for (const [set, keys] of bySet(immediate)) tx.deleteElements(set, keys);
  for (const s of setsToDelete) tx.deleteSet(s.kind, s.name);
  for (const s of setsToAdd) tx.addSet(s);
  for (const c of rewrite) tx.addChainRules(c);
  for (const [set, list] of bySet(adds)) tx.addElements(set, list);

  // A stale chain wanted again belongs to a port that changed, so `wanted` covers it. The chains due go in a
  // transaction of their own whose deletes make nft 1.0.6 load its whole cache (~0.12 s at 10,000 services): a sync
  // that writes rules leaves them to a later one unless one has waited STALE_CHAIN_BATCH_MS, so that changes coming
  // one after another pay that once every few seconds, not once per sync.
  // Stale elements go the same way, unless wanted again (the element store has them back: this transaction added
  // them, harmlessly, as the kernel still held them) or their set is gone.
  const staleElements = new Map<string, number>();
  for (const [id, since] of applied.staleElements) {
    const [set, key] = elementOfId(id);
    const held = nextElements.get(set);
    if (held !== undefined && !held.has(key) && !setsToDelete.some((s) => s.name === set)) staleElements.set(id, since);
  }
  const due = chainsToDelete(applied.stale, now, wanted);
  const dueElements = chainsToDelete(staleElements, now, new Set());
  const batchDue =
    tx.operations === 0 ||
    due.some((name) => now - applied.stale.get(name)! >= STALE_CHAIN_BATCH_MS) ||
    dueElements.some((id) => now - staleElements.get(id)! >= STALE_CHAIN_BATCH_MS);
  const cleanupChains = batchDue ? due : [];
  const cleanupElements = batchDue ? dueElements : [];
  const stale = new Map(applied.stale);
  for (const c of cleanupChains) stale.delete(c);
  for (const c of rewrite) stale.delete(c.name);
  for (const name of flush) if (!stale.has(name)) stale.set(name, now);
  for (const id of cleanupElements) staleElements.delete(id);
  for (const id of deferred) if (!staleElements.has(id)) staleElements.set(id, now);
  const addedElements: string[] = [];
  for (const [set, e] of adds) if (DEFERRED_ELEMENT_SETS.has(set)) addedElements.push(elementId(set, e.key));

  const next: AppliedState = {
    family: render.family,
    fixed: render.fixed,
    services: LayeredMap.over(applied.services).with(changed),
    elements: nextElements,
    stale,
    staleElements,
  };
  return {
    full: false,
    cleanup: cleanupText(render.family, cleanupChains, render.counters, cleanupElements),
    cleanupChains,
    cleanupElements,
    rewritten: rewrite.map((c) => c.name),
    addedElements,
    text: tx.text(),
    more: [],
    operations: tx.operations,
    next,
  };
}

/**
 * Declarations that went away are deleted; new ones added; a changed one
 * (say an affinity timeout) deleted and added again. Returns whether any was
 * re-created.
 */
function diffSets(before: readonly NftSet[], after: readonly NftSet[], del: NftSet[], add: NftSet[]): boolean {
  let recreated = false;
  const old = new Map(before.map((s) => [s.name, s]));
  const names = new Set(after.map((s) => s.name));
  for (const s of before) if (!names.has(s.name)) del.push(s);
  for (const s of after) {
    const o = old.get(s.name);
    if (o === undefined) add.push(s);
    else if (!sameSetDecl(o, s)) {
      del.push(o);
      add.push(s);
      recreated = true;
    }
  }
  return recreated;
}
