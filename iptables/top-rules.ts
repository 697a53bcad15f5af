/**
 * The shared top-level chains' rules (KUBE-SERVICES, KUBE-NODEPORTS, the
 * filter chains) gathered from every service port's render, in snapshot
 * order. At 10,000 services they are arrays of tens of thousands of entries,
 * rebuilt on every sync; an endpoint change leaves every service's share of
 * them as it was, so TopRulesCache hands back the previous arrays (the very
 * objects: plan.ts then skips the chains by identity) when no share changed.
 */
import type { EntryRules, ServiceRender } from './render-service.ts';

export interface TopRules {
  readonly natServices: readonly string[];
  readonly natNodePorts: readonly string[];
  readonly filterServices: readonly string[];
  readonly filterExternalServices: readonly string[];
  readonly filterNodePorts: readonly string[];
  readonly filterProxyFirewall: readonly string[];
  /** Services with Local policy and no local endpoints, per policy (metrics). */
  readonly noLocalInternal: number;
  readonly noLocalExternal: number;
}

/** What one service port contributes (a ServiceRender or a ServiceOutline). */
export type TopRulesShare = EntryRules & Pick<ServiceRender, 'noLocalInternal' | 'noLocalExternal'>;

const LISTS = ['natServices', 'natNodePorts', 'filterServices', 'filterExternalServices', 'filterNodePorts', 'filterProxyFirewall'] as const;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameShare(a: ServiceRender, b: ServiceRender): boolean {
  if (a === b) return true;
  if (a.noLocalInternal !== b.noLocalInternal || a.noLocalExternal !== b.noLocalExternal) return false;
  for (const k of LISTS) if (!sameList(a[k], b[k])) return false;
  return true;
}

/** Every render's share, in order, with `natTail` (the KUBE-NODEPORTS jumps that end KUBE-SERVICES) last. */
export function gatherTopRules(renders: readonly TopRulesShare[], natTail: readonly string[]): TopRules {
  const lists: Record<keyof EntryRules, string[]> = {
    natServices: [],
    natNodePorts: [],
    filterServices: [],
    filterExternalServices: [],
    filterNodePorts: [],
    filterProxyFirewall: [],
  };
  let noLocalInternal = 0;
  let noLocalExternal = 0;
  for (const r of renders) {
    for (const k of LISTS) for (const rule of r[k]) lists[k].push(rule);
    if (r.noLocalInternal) noLocalInternal++;
    if (r.noLocalExternal) noLocalExternal++;
  }
  for (const rule of natTail) lists.natServices.push(rule);
  return { ...lists, noLocalInternal, noLocalExternal };
}

/** Remembers the last gathering; the same TopRules object again while every share and the tail are unchanged. */
export class TopRulesCache {
  private renders: readonly ServiceRender[] = [];
  private natTail: readonly string[] = [];
  private rules: TopRules | null = null;

  get(renders: readonly ServiceRender[], natTail: readonly string[]): TopRules {
    if (!this.rules || !this.unchanged(renders, natTail)) this.rules = gatherTopRules(renders, natTail);
    this.renders = renders;
    this.natTail = natTail;
    return this.rules;
  }

  private unchanged(renders: readonly ServiceRender[], natTail: readonly string[]): boolean {
    if (renders.length !== this.renders.length || !sameList(natTail, this.natTail)) return false;
    for (let i = 0; i < renders.length; i++) if (!sameShare(renders[i]!, this.renders[i]!)) return false;
    return true;
  }
}
