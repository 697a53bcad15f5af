/**
 * Sync planning: the iptables-restore input that takes the kernel from what
 * was last applied to the desired Ruleset.
 *
 * - Full sync (nothing known to be applied): every kube-proxy chain is
 *   written, and stale per-service chains found in the kernel are deleted.
 * - Partial sync: only chains whose rules changed since the last successful
 *   restore are written, top-level chains included (upstream rewrites the
 *   filter table and the top-level nat chains every time; an endpoint change
 *   leaves KUBE-SERVICES as it is, so we do not); per-service chains that
 *   disappeared are flushed and deleted.
 *
 * Chains are compared by identity first (the render cache hands back the same
 * Chain object for an unchanged service), then by content.
 */
import { lazyTexts, type LazyTexts } from '../proxier/lazy-texts.ts';
import { fixedChain, isServiceChain, serviceChainHash } from './chains.ts';
import { ruleCount, sameRules } from '../proxier/packed-rules.ts';
import type { ServiceEntry } from './render.ts';
import type { ServiceRender } from './render-service.ts';
import { restoreText, restoreTextLength, type TableSection } from './restore-text.ts';
import type { Chain, Ruleset } from './ruleset.ts';

/**
 * What the kernel holds after a successful restore: the top-level chains per
 * table, and the render of each service port (whose chains it wrote). Owned
 * and updated in place by the caller through Plan.commit().
 */
export interface AppliedState {
  readonly topLevel: Map<string, Map<string, Chain>>;
  readonly services: Map<string, ServiceRender>;
}

export interface PlanInput {
  /** The desired built-in and top-level chains (RenderResult.topLevel). */
  readonly topLevel: Ruleset;
  /** The desired per-service renders (RenderResult.perService). */
  readonly perService: readonly ServiceEntry[];
  /** Null forces a full sync. */
  readonly applied: AppliedState | null;
  /** Full sync only: chain names found in the kernel per table (iptables-save), for stale-chain deletion. */
  readonly existingChains?: ReadonlyMap<string, readonly string[]>;
  /** Edits of built-in chains per table (missing jump rules inserted, outdated ones deleted). */
  readonly edits?: ReadonlyMap<string, readonly string[]>;
  /** Split syncs writing more per-service chains than this into several restores (see batches()); 0 = one restore. */
  readonly batchChains?: number;
}

export interface Plan {
  readonly full: boolean;
  /**
   * iptables-restore inputs, for `--noflush`, to apply in order (usually one). Each text is built as it is iterated
   * and not kept: a full sync at 10,000 services writes ~17 MB of text in ~20 batches, and holding them all until
   * the last restore was done added that much to the agent's peak heap.
   */
  /** Restore texts, each made when the writer reaches it. */
  readonly batches: LazyTexts;
  /** All batches together (built on demand: tests and reports). */
  readonly text: string;
  /** Total size of the batches. */
  readonly bytes: number;
  /** Chains declared (rewritten) per table. */
  readonly writtenChains: ReadonlyMap<string, number>;
  /** Rules written per table (metric kubeproxy_sync_proxy_rules_iptables_last). */
  readonly writtenRules: ReadonlyMap<string, number>;
  /** The per-service chains declared (so flushed, their counters restarted), by name. */
  readonly writtenServiceChains: readonly string[];
  readonly deletedChains: readonly string[];
  /** Once every batch succeeded: the state now in the kernel (a partial plan updates `applied` in place). */
  commit(applied: AppliedState | null): AppliedState;
}

/** Top-level nat chains that per-service chains jump to: written before any batch of service chains. */
const isLeaf = (name: string): boolean => fixedChain(name)?.leaf === true;

interface TableWork {
  readonly table: string;
  readonly toWrite: readonly Chain[];
  readonly stale: readonly string[];
  readonly edits: readonly string[];
}

function section(table: string, chains: readonly Chain[], edits: readonly string[] = [], stale: readonly string[] = []): TableSection {
  return { table, chains, emptied: stale, edits, deleted: stale };
}

/**
 * Per-service chains grouped by service, in render order: a service's
 * KUBE-EXT/FW/SVC/SVL chains share one hash and its KUBE-SEP chains follow
 * them; a group must go in one restore (its chains jump to each other).
 */
function serviceGroups(chains: readonly Chain[]): Chain[][] {
  const groups: Chain[][] = [];
  let hash = '';
  for (const c of chains) {
    const h = serviceChainHash(c.name);
    if (groups.length === 0 || (h !== null && h !== hash)) {
      groups.push([]);
      hash = h ?? '';
    }
    groups.at(-1)!.push(c);
  }
  return groups;
}

/**
 * Splits the work into restores: iptables-nft-restore --noflush (1.8.9) is
 * quadratic in the size of one input (1,000 services: 1.1 s; 3,000: 14 s),
 * not in what the kernel holds, so a large sync goes as: the leaf chains
 * plus a first batch of whole services, more batches of whole services, and
 * last everything that refers to them (KUBE-SERVICES, KUBE-NODEPORTS, the
 * filter table, jump rules, stale-chain deletions). Each service changes
 * atomically; nothing points at a chain before it exists.
 */
function batches(work: readonly TableWork[], batchChains: number): TableSection[][] {
  const nat = work.find((w) => w.table === 'nat');
  const perService = nat?.toWrite.filter((c) => isServiceChain(c.name)) ?? [];
  if (!nat || batchChains <= 0 || perService.length <= batchChains) {
    return [work.map((w) => section(w.table, w.toWrite, w.edits, w.stale))];
  }
  const leaves = nat.toWrite.filter((c) => isLeaf(c.name));
  const last = nat.toWrite.filter((c) => !isServiceChain(c.name) && !isLeaf(c.name));
  const out: TableSection[][] = [];
  let current: Chain[] = [...leaves];
  let count = 0;
  for (const group of serviceGroups(perService)) {
    if (count > 0 && count + group.length > batchChains) {
      out.push([section('nat', current)]);
      current = [];
      count = 0;
    }
    current.push(...group);
    count += group.length;
  }
  if (current.length) out.push([section('nat', current)]);
  out.push([
    ...work.filter((w) => w.table !== 'nat').map((w) => section(w.table, w.toWrite, w.edits, w.stale)),
    section('nat', last, nat.edits, nat.stale),
  ]);
  return out;
}

export function planSync(input: PlanInput): Plan {
  const { topLevel: desired, applied } = input;
  const full = applied === null;
  const work: TableWork[] = [];
  const deleted: string[] = [];
  const changedServices: ServiceEntry[] = [];
  const removedServices: string[] = [];
  const changedTop: { table: string; chain: Chain }[] = [];

  // Per-service nat chains: compared service by service, by identity first.
  const serviceWrite: Chain[] = [];
  const serviceStale: string[] = [];
  if (full) {
    const wanted = new Set<string>();
    for (const { render } of input.perService) for (const c of render.natChains) (serviceWrite.push(c), wanted.add(c.name));
    for (const name of input.existingChains?.get('nat') ?? []) if (isServiceChain(name) && !wanted.has(name)) serviceStale.push(name);
  } else {
    // Keys are unique per snapshot (a service port and its protocol), so every applied key is
    // current when all of them were found: the removed ones are looked for only when some are.
    let found = 0;
    for (const entry of input.perService) {
      const before = applied.services.get(entry.key);
      if (before !== undefined) found++;
      if (before === entry.render) continue;
      changedServices.push(entry);
      const old = new Map((before?.natChains ?? []).map((c) => [c.name, c]));
      for (const c of entry.render.natChains) {
        const was = old.get(c.name);
        if (!was || !sameRules(was, c)) serviceWrite.push(c);
        old.delete(c.name);
      }
      serviceStale.push(...old.keys());
    }
    if (found !== applied.services.size) {
      const seen = new Set(input.perService.map((e) => e.key));
      for (const [key, render] of applied.services) {
        if (seen.has(key)) continue;
        removedServices.push(key);
        for (const c of render.natChains) serviceStale.push(c.name);
      }
    }
  }

  const written = new Map<string, number>();
  const writtenRules = new Map<string, number>();
  for (const table of desired.tables) {
    const before = applied?.topLevel.get(table.name);
    const toWrite: Chain[] = [];
    for (const chain of table.chains) {
      // Built-in chains hold the jump rules, managed separately.
      if (chain.policy !== null) continue;
      const was = before?.get(chain.name);
      if (full || !was || !sameRules(was, chain)) {
        toWrite.push(chain);
        changedTop.push({ table: table.name, chain });
      }
    }
    const stale: string[] = [];
    if (table.name === 'nat') {
      toWrite.push(...serviceWrite);
      stale.push(...serviceStale);
    } else if (full) {
      for (const name of input.existingChains?.get(table.name) ?? []) if (isServiceChain(name)) stale.push(name);
    }
    work.push({ table: table.name, toWrite, stale, edits: input.edits?.get(table.name) ?? [] });
    written.set(table.name, toWrite.length);
    writtenRules.set(
      table.name,
      toWrite.reduce((n, c) => n + ruleCount(c), 0),
    );
    deleted.push(...stale);
  }
  const inputs = batches(work, input.batchChains ?? 0)
    .map((sections) => ({ sections, bytes: restoreTextLength(sections) }))
    .filter((b) => b.bytes > 0);

  const commit = (state: AppliedState | null): AppliedState => {
    if (full || state === null) {
      const topLevel = new Map<string, Map<string, Chain>>();
      for (const table of desired.tables) {
        topLevel.set(table.name, new Map(table.chains.filter((c) => c.policy === null).map((c) => [c.name, c])));
      }
      return { topLevel, services: new Map(input.perService.map((e) => [e.key, e.render])) };
    }
    for (const { table, chain } of changedTop) {
      let m = state.topLevel.get(table);
      if (!m) state.topLevel.set(table, (m = new Map()));
      m.set(chain.name, chain);
    }
    for (const e of changedServices) state.services.set(e.key, e.render);
    for (const key of removedServices) state.services.delete(key);
    return state;
  };
  return {
    full,
    batches: lazyTexts(inputs.length, (i) => restoreText(inputs[i]!.sections)),
    get text() {
      return inputs.map((b) => restoreText(b.sections)).join('');
    },
    bytes: inputs.reduce((n, b) => n + b.bytes, 0),
    writtenChains: written,
    writtenRules,
    writtenServiceChains: serviceWrite.map((c) => c.name),
    deletedChains: deleted,
    commit,
  };
}
