/**
 * What the nftables mode checks about its table, pure: which of the names the
 * last applied state wrote a live listing lacks (outside damage), and how
 * many objects a render puts in the table (the sync report's count).
 */
import type { LiveNames } from './full-sync.ts';
import type { NftRender } from './render.ts';
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

/** Chains, sets and maps, rules and elements the table holds after a sync of this render. */
export function countObjects(render: NftRender): number {
  let n = render.fixed.chains.length + render.fixed.sets.length;
  for (const c of render.fixed.chains) n += c.rules.length;
  const keys = new Set<string>();
  for (const s of render.fixed.sets) for (const e of s.elements ?? []) keys.add(`${s.name}\u0000${e.key}`);
  for (const svc of render.services) {
    n += svc.chains.length + svc.affinitySets.length;
    for (const c of svc.chains) n += c.rules.length;
    for (const { set, element } of svc.elements) keys.add(`${set}\u0000${element.key}`);
  }
  return n + keys.size;
}
