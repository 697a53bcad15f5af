/**
 * What the nftables mode checks about its table, pure: which of the names the
 * last applied state wrote a live listing lacks, and which base chains it
 * lists with another type, hook, priority or policy (outside damage), and how
 * many objects a render puts in the table (the sync report's count).
 */
import type { LiveNames } from './full-sync.ts';
import type { ElementStore } from './element-store.ts';
import type { NftRender } from './render.ts';
import { ruleCount } from '../proxier/packed-rules.ts';
import type { AppliedState } from './sync-state.ts';

/** Chains, sets and maps the applied state holds that the listing lacks, fixed ones first. */
export function missingNames(applied: AppliedState, live: LiveNames): string[] {
  const chains = new Set(live.chains);
  const sets = new Set(live.sets.map((s) => s.name));
  const missing: string[] = [];
  for (const c of applied.fixed.chains) if (!chains.has(c.name)) missing.push(c.name);
  for (const s of applied.fixed.sets) if (!sets.has(s.name)) missing.push(s.name);
  for (const svc of applied.services.values()) {
    for (const c of svc.chains) if (!chains.has(c.name)) missing.push(c.name);
    for (const s of svc.affinitySets) if (!sets.has(s.name)) missing.push(s.name);
  }
  return missing;
}

/**
 * Chains, sets and maps, rules and elements the table holds after a sync of
 * this render. Elements are counted from the applied element store (one entry
 * per set and key already), not by re-keying every service's elements: that
 * cost ~3 MB of garbage per partial sync at 10,000 services.
 */
export function countObjects(render: NftRender, elements: ElementStore): number {
  let n = render.fixed.chains.length + render.fixed.sets.length;
  for (const c of render.fixed.chains) n += c.rules.length;
  // Indexed loops: for-of here allocated an iterator result per service (~0.5 MB a sync at 10,000).
  const services = render.services;
  for (let i = 0; i < services.length; i++) {
    const svc = services[i]!;
    n += svc.chains.length + svc.affinitySets.length;
    for (let j = 0; j < svc.chains.length; j++) n += ruleCount(svc.chains[j]!);
  }
  for (const m of elements.values()) n += m.size;
  return n;
}

/**
 * Base chains the applied state wrote that the listing shows with another type, hook or priority, or a policy other
 * than accept (the one we write, by leaving it out), each as "name (listed; written)". Such a chain is there by name,
 * so missingNames does not see it; yet a re-created chain at another priority makes every later `add chain` of ours
 * fail ("Operation not supported"), and an `add chain` without a policy leaves a `policy drop` set from outside.
 */
export function changedBaseChains(applied: AppliedState, live: LiveNames): string[] {
  if (live.baseChains === undefined) return [];
  const listed = new Map(live.baseChains.map((b) => [b.name, b]));
  const out: string[] = [];
  for (const c of applied.fixed.chains) {
    const b = listed.get(c.name);
    if (c.base === null || b === undefined) continue; // a missing one is missingNames' (a regular one listed is not a base chain: below)
    const want = `type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority} policy accept`;
    const have = `type ${b.type} hook ${b.hook} priority ${b.priority} policy ${b.policy}`;
    if (have !== want) out.push(`${c.name} (${have}; written: ${want})`);
  }
  const names = new Set(live.chains);
  for (const c of applied.fixed.chains)
    if (c.base !== null && names.has(c.name) && !listed.has(c.name)) out.push(`${c.name} (a regular chain; written: a base chain)`);
  return out;
}
