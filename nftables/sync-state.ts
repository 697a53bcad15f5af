/**
 * What the writer knows the kernel holds after its last successful
 * transaction, the input of the next partial sync: the fixed part, every
 * service port's objects (compared by identity, then by content), the
 * elements of every set and map, and the chains that were flushed and wait
 * for deletion (upstream's staleChains, with the time they became stale).
 */
import type { LazyTexts } from '../proxier/lazy-texts.ts';
import { buildStore, type ElementStore } from './element-store.ts';
import type { NftFamily } from './model.ts';
import { HAIRPIN_CONNECTIONS } from './objects.ts';
import type { FixedPart } from './render-base.ts';
import type { NftRender } from './render.ts';
import type { PlacedElement, ServiceObjects } from './render-service.ts';
import type { SetDecl } from './transaction.ts';

/** Chains are deleted at least this long after they were flushed (kernels before 6.2 release references late). */
export const STALE_CHAIN_DELAY_MS = 1000;
/**
 * A partial sync that writes rules deletes stale chains only once one of them has waited this long; one with nothing
 * else to write (the periodic sync, at the latest) deletes every chain stale for STALE_CHAIN_DELAY_MS. Upstream
 * deletes them in every sync.
 */
export const STALE_CHAIN_BATCH_MS = 10_000;

export interface AppliedState {
  readonly family: NftFamily;
  readonly fixed: FixedPart;
  readonly services: ReadonlyMap<string, ServiceObjects>;
  readonly elements: ElementStore;
  /** Flushed chains not yet deleted -> when they became stale (ms). */
  readonly stale: ReadonlyMap<string, number>;
  /**
   * Elements of DEFERRED_ELEMENT_SETS nothing wants any more that the kernel still holds (elementId) -> when they
   * became stale (ms); the element store no longer has them. Deleted with the stale chains.
   */
  readonly staleElements: ReadonlyMap<string, number>;
}

/**
 * Sets whose elements that go are deleted by the stale cleanup, not by the event's transaction: generation B's
 * hairpin-connections, which loses an element whenever a local endpoint goes (upstream deletes it in the sync's
 * transaction). Any `delete` makes nft 1.0.6 load its whole cache (transaction.ts): 74-136 ms of an event's
 * transaction at 10,000 services against 23-40 ms without. A stale element meanwhile only masquerades hairpin
 * traffic (source and destination the same address and port) to an endpoint that no longer exists, which nothing
 * sends: harmless. A full sync flushes the set and refills it.
 */
export const DEFERRED_ELEMENT_SETS: ReadonlySet<string> = new Set([HAIRPIN_CONNECTIONS]);

/** One element's identity across sets, as staleElements and the cleanup bookkeeping key it. */
export const elementId = (set: string, key: string): string => `${set}\u0000${key}`;

/** elementId's parts. */
export function elementOfId(id: string): [set: string, key: string] {
  const i = id.indexOf('\u0000');
  return [id.slice(0, i), id.slice(i + 1)];
}

export interface SyncPlan {
  readonly full: boolean;
  /**
   * Deletes chains stale for at least STALE_CHAIN_DELAY_MS (from a partial sync that writes rules: only once one has
   * waited STALE_CHAIN_BATCH_MS), on its own; "" when there are none. Run it after the main transaction, and beside
   * the syncs that follow: upstream runs it first, but `delete` makes nft 1.0.6 load its whole cache (0.1-0.4 s at
   * 10,000 services), which would delay the rules of the event that triggered this sync or the next one. The main
   * transaction never refers to these chains; a later one may (see `rewritten`).
   */
  readonly cleanup: string;
  readonly cleanupChains: readonly string[];
  /** The stale elements the cleanup deletes (elementId). */
  readonly cleanupElements: readonly string[];
  /**
   * Chains the main transaction adds or rewrites, or null when it may write any (full syncs and cold starts). A
   * deletion of stale chains still running beside the syncs must end before a transaction that writes one of its
   * chains (an endpoint back within seconds), or the one would undo the other.
   */
  readonly rewritten: readonly string[] | null;
  /** Elements of DEFERRED_ELEMENT_SETS the main transaction adds (elementId), for the same reason; empty with rewritten null. */
  readonly addedElements: readonly string[];
  /** The main transaction; "" when nothing changed. */
  readonly text: string;
  /**
   * Transactions to run after the main one, in order (only a cold start is split: see cold-start.ts). A cold start
   * makes each one's text when the iteration reaches it, so the ~20 MB of a 10,000-service table are never all alive.
   */
  readonly more: LazyTexts;
  /** Operations of all transactions but the cleanup. */
  readonly operations: number;
  /** The kernel's state once all transactions succeeded. On any failure, discard it and sync fully. */
  readonly next: AppliedState;
}

/** The fixed part's own elements (nodeport-ips), as contributions to the element store. */
export function fixedElements(fixed: FixedPart): PlacedElement[] {
  return fixed.sets.flatMap((s) => (s.elements ?? []).map((element) => ({ set: s.name, element })));
}

export function stateFromRender(render: NftRender, stale: ReadonlyMap<string, number>): AppliedState {
  const contributions = [...fixedElements(render.fixed), ...render.services.flatMap((s) => s.elements)];
  return {
    family: render.family,
    fixed: render.fixed,
    services: new Map(render.services.map((s) => [s.key, s])),
    elements: buildStore(
      render.fixed.sets.map((s) => s.name),
      contributions,
    ),
    stale,
    staleElements: new Map(),
  };
}

/** Per-service chain names the render wants (to keep them out of the stale list). */
export function desiredChainNames(render: NftRender): Set<string> {
  const out = new Set<string>();
  for (const s of render.services) for (const c of s.chains) out.add(c.name);
  return out;
}

export function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Stale things (chains, elementIds) stale long enough to delete now and not wanted again. */
export function chainsToDelete(stale: ReadonlyMap<string, number>, now: number, wanted: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const [name, since] of stale) if (now - since >= STALE_CHAIN_DELAY_MS && !wanted.has(name)) out.push(name);
  return out.sort();
}

/** Every set and map the render declares (fixed ones and affinity sets), for the transaction writer. */
export function declarations(render: NftRender): SetDecl[] {
  return [...render.fixed.sets, ...render.services.flatMap((s) => s.affinitySets)];
}
