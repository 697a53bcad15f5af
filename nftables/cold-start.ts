/**
 * The first sync onto a node whose table does not exist yet, split into
 * several transactions of whole service ports.
 *
 * Why: every `numgen ... vmap { ... }` is an anonymous set, and binding one
 * makes the kernel walk the transaction's whole commit list
 * (__nft_set_trans_bind, measured with perf on Linux 6.18: 68 % of `nft -f`
 * at 6,000 services), so one transaction costs (anonymous sets) x
 * (operations): 2 s at 1,000 services, ~2 minutes at 10,000. Upstream's
 * cold start is one huge transaction (kubernetes#139328, #139546 discuss
 * chunking it). Here there is nothing to disrupt yet, so the table is built
 * in steps: the setup and fixed chains first, then chunks of service ports,
 * each added atomically with its elements. Over an existing table a full
 * sync stays one transaction (full-sync.ts), so traffic never sees a
 * half-written table.
 */
import { lazyTexts } from '../proxier/lazy-texts.ts';
import { writeFixedRules, writeServices, writeSetup } from './full-sync.ts';
import type { ElementStore } from './element-store.ts';
import type { NftElement } from './model.ts';
import type { NftRender } from './render.ts';
import type { PlacedElement } from './render-service.ts';
import { declarations, stateFromRender, type SyncPlan } from './sync-state.ts';
import { bySet, Transaction } from './transaction.ts';

/** Service ports per transaction: ~25 operations each, so a few seconds of kernel work at most. */
export const COLD_START_CHUNK = 500;

export function planColdStart(render: NftRender, opts: { readonly servicesPerTransaction?: number } = {}): SyncPlan {
  const chunk = Math.max(1, opts.servicesPerTransaction ?? COLD_START_CHUNK);
  const decls = declarations(render);
  const first = new Transaction(render.family, decls);
  writeSetup(first, render, false);
  writeFixedRules(first, render);
  for (const set of render.fixed.sets) first.addElements(set.name, set.elements ?? []);

  // Each element goes with the service port that wins it (the last one writing its key), so no two chunks add one key.
  const next = stateFromRender(render, new Map());
  const owned = ownedElements(render, next.elements);

  // Each chunk's transaction is made when the writer reaches it (and is garbage once written): the whole cold start
  // of 10,000 service ports is ~20 MB of text. Its operations are counted the same way, so `operations` is complete
  // once `more` has been iterated, which the writer does before it reports.
  const firstOperations = first.operations;
  const chunkOperations: number[] = [];
  const more = lazyTexts(Math.ceil(render.services.length / chunk), (k) => {
    const start = k * chunk;
    const tx = new Transaction(render.family, decls);
    const services = render.services.slice(start, start + chunk);
    writeServices(tx, services, new Set());
    const pairs: [string, NftElement][] = [];
    for (let i = start; i < start + services.length; i++) for (const { set, element } of owned(i)) pairs.push([set, element]);
    for (const [set, list] of bySet(pairs)) tx.addElements(set, list);
    chunkOperations[k] = tx.operations;
    return tx.text();
  });
  return {
    full: true,
    cleanup: '',
    cleanupChains: [],
    cleanupElements: [],
    rewritten: null,
    addedElements: [],
    text: first.text(),
    more,
    get operations() {
      return chunkOperations.reduce((n, o) => n + o, firstOperations);
    },
    next,
  };
}

/**
 * The elements service port `i` wins, in the order their keys were first
 * written by any port (the order the element store was built in). The store
 * holds each key's winning element, so a port wins an element when the store
 * holds that very object. A key written by one port only is first written by
 * that port; only a port winning a key some other port wrote too, after one of
 * its own keys, can be out of its own order: for such a port (conflicting
 * external IPs, say) the whole first-written order is built once, as before.
 * Without that case, nothing beyond the store is kept while the chunks are
 * written (the map of every key to its winner was ~7 MB at 10,000 service ports).
 */
function ownedElements(render: NftRender, store: ElementStore): (i: number) => readonly PlacedElement[] {
  let firstWritten: Map<number, PlacedElement[]> | null = null;
  return (i) => {
    const own: PlacedElement[] = [];
    let reordered = false;
    for (const p of render.services[i]!.elements) {
      const stored = store.get(p.set)!.get(p.element.key)!;
      if (stored.element !== p.element) continue;
      if (stored.refs > 1 && own.length > 0) reordered = true;
      own.push(p);
    }
    if (!reordered) return own;
    firstWritten ??= byFirstWrite(render);
    return firstWritten.get(i) ?? [];
  };
}

/** Every port's won elements, ordered by when their keys were first written (the cold start's original grouping). */
function byFirstWrite(render: NftRender): Map<number, PlacedElement[]> {
  const owner = new Map<string, { index: number; element: PlacedElement }>();
  render.services.forEach((svc, index) => {
    for (const p of svc.elements) owner.set(`${p.set}\u0000${p.element.key}`, { index, element: p });
  });
  const out = new Map<number, PlacedElement[]>();
  for (const { index, element } of owner.values()) {
    const list = out.get(index);
    if (list) list.push(element);
    else out.set(index, [element]);
  }
  return out;
}
