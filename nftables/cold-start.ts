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
import type { NftElement } from './model.ts';
import type { NftRender } from './render.ts';
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
  const owner = new Map<string, { index: number; element: NftElement }>();
  render.services.forEach((svc, index) => {
    for (const { set, element } of svc.elements) owner.set(`${set}\u0000${element.key}`, { index, element });
  });
  const byService = new Map<number, { set: string; element: NftElement }[]>();
  for (const [k, { index, element }] of owner) {
    const list = byService.get(index) ?? [];
    list.push({ set: k.slice(0, k.indexOf('\u0000')), element });
    byService.set(index, list);
  }

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
    for (let i = start; i < start + services.length; i++) for (const { set, element } of byService.get(i) ?? []) pairs.push([set, element]);
    for (const [set, list] of bySet(pairs)) tx.addElements(set, list);
    chunkOperations[k] = tx.operations;
    return tx.text();
  });
  return {
    full: true,
    cleanup: '',
    cleanupChains: [],
    text: first.text(),
    more,
    get operations() {
      return chunkOperations.reduce((n, o) => n + o, firstOperations);
    },
    next: stateFromRender(render, new Map()),
  };
}
