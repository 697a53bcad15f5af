/**
 * A table diff (diff.ts) as `kube-proxy-ts diff --mode=nftables` reports it:
 * grouped per service port, then the fixed objects, then what no desired
 * service owns. Chains, affinity sets and elements the render has belong to
 * the service port that wrote them; objects only the kernel has are
 * attributed by what they say: a per-service chain name carries
 * "ns/svc/proto/port", a map element points at such a chain, a no-endpoint
 * element's comment is "ns/svc:port". Pure.
 *
 * A per-service chain the kernel has, empty and not desired, is a stale
 * chain the mode flushed and deletes at least 1 s later (upstream's
 * staleChains): listed as awaiting deletion, not as drift. Nothing can
 * reach it unless a rule jumps there, and such a rule is drift itself.
 * Likewise an element of generation B's hairpin-connections nothing wants:
 * a local endpoint that went leaves it to the same cleanup (sync-state.ts
 * DEFERRED_ELEMENT_SETS); it only masquerades a pod reaching itself through
 * a service it no longer serves, which cannot happen.
 */
import { diffTables, isEmptyDiff, type ChainDiff, type SetDiff } from './diff.ts';
import { elementText, TABLE_NAME, type BaseChainSpec, type NftElement, type NftFamily, type NftTable } from './model.ts';
import { normalizeKey } from './normalize.ts';
import { serviceOfName } from './names.ts';
import { chainOwner } from './objects.ts';
import { tableOf, type NftRender } from './render.ts';
import { DEFERRED_ELEMENT_SETS } from './sync-state.ts';

export const FIXED_GROUP = 'fixed objects';
export const UNOWNED_GROUP = 'objects no desired service owns';

export interface ObjectChange {
  readonly kind: 'chain' | 'set' | 'map' | 'counter';
  readonly name: string;
  /** "missing from the kernel", "1 missing, 0 unexpected rules", ... */
  readonly what: string;
  /** "+ desired", "- live", "~ desired (kernel: live)". */
  readonly lines: readonly string[];
}

export interface DiffGroup {
  /** "ns/svc:port/PROTO", FIXED_GROUP or UNOWNED_GROUP. */
  readonly title: string;
  readonly changes: readonly ObjectChange[];
}

export interface NftDiffReport {
  readonly family: NftFamily;
  readonly identical: boolean;
  readonly tableMissing: boolean;
  /** Service ports the render holds (for the "table missing" line). */
  readonly servicePorts: number;
  /** The render counts traffic (--traffic-counters): its named counters were compared too. */
  readonly counters: boolean;
  /** Stale per-service chains the kernel still has, flushed, awaiting their deletion. */
  readonly awaitingDeletion: readonly string[];
  /** Elements of sets the stale cleanup empties (hairpin-connections) nothing wants: "set { key }". */
  readonly awaitingElements: readonly string[];
  readonly groups: readonly DiffGroup[];
}

const baseText = (b: BaseChainSpec | null): string =>
  b ? `type ${b.type} hook ${b.hook} priority ${b.priority}${b.policy ? ` policy ${b.policy}` : ''}` : 'a regular chain';

/** "priority differs", "hook and priority differ", "policy differs": what of a base chain the kernel has otherwise than the render. */
function baseDiffers(d: BaseChainSpec | null, l: BaseChainSpec | null): string {
  if (d === null || l === null) return d === null ? 'a base chain in the kernel' : 'a regular chain in the kernel';
  const fields: string[] = (['type', 'hook', 'priority'] as const).filter((k) => d[k] !== l[k]);
  if ((d.policy ?? 'accept') !== (l.policy ?? 'accept')) fields.push('policy');
  return fields.length === 1 ? `${fields[0]} differs` : `${fields.slice(0, -1).join(', ')} and ${fields.at(-1)} differ`;
}

export function reportTableDiff(render: NftRender, live: NftTable | null): NftDiffReport {
  const desired = tableOf(render);
  const all = diffTables(desired, live);
  const liveRules = new Map((live?.chains ?? []).map((c) => [c.name, c.rules.length]));
  const flushed = (name: string): boolean => chainOwner(name) === 'service' && liveRules.get(name) === 0;
  const awaitingDeletion = all.extraChains.filter(flushed);
  // A stale endpoint chain keeps its counter (--traffic-counters) until both are deleted.
  const pending = new Set(awaitingDeletion);
  const awaitingElements = all.sets.flatMap((s) => (DEFERRED_ELEMENT_SETS.has(s.set) ? s.extra.map((e) => `${s.set} { ${elementText(e)} }`) : []));
  const d = {
    ...all,
    extraChains: all.extraChains.filter((name) => !flushed(name)),
    extraCounters: all.extraCounters.filter((n) => !pending.has(n)),
    sets: all.sets
      .map((s) => (DEFERRED_ELEMENT_SETS.has(s.set) ? { ...s, extra: [] } : s))
      .filter((s) => s.declaration !== null || s.missing.length + s.extra.length + s.changed.length > 0),
  };
  const chainOf = new Map<string, string>();
  const elementOf = new Map<string, string>();
  for (const svc of render.services) {
    for (const c of svc.chains) chainOf.set(c.name, svc.key);
    for (const s of svc.affinitySets) chainOf.set(s.name, svc.key);
    for (const { set, element } of svc.elements) elementOf.set(`${set}\u0000${normalizeKey(element.key)}`, svc.key);
  }
  const ownerOfName = (name: string): string =>
    chainOf.get(name) ?? (['base', 'fixed', 'retired'].includes(chainOwner(name)) ? FIXED_GROUP : (serviceOfName(name) ?? UNOWNED_GROUP));
  const ownerOfElement = (set: string, e: NftElement): string => {
    const known = elementOf.get(`${set}\u0000${e.key}`);
    if (known) return known;
    const target = /^(?:goto|jump) (\S+)$/.exec(e.value ?? '')?.[1];
    if (target) return ownerOfName(target);
    const proto = e.key.split(' . ').find((p) => /^(tcp|udp|sctp)$/.test(p));
    if (e.comment && proto) return `${e.comment}/${proto.toUpperCase()}`;
    return render.fixed.sets.some((s) => s.name === set && (s.elements ?? []).length > 0) ? FIXED_GROUP : UNOWNED_GROUP;
  };
  const kindOf = (name: string): 'set' | 'map' =>
    (desired.sets.find((s) => s.name === name) ?? live?.sets.find((s) => s.name === name))?.kind ?? 'set';

  const groups = new Map<string, ObjectChange[]>();
  const add = (title: string, change: ObjectChange) => groups.set(title, [...(groups.get(title) ?? []), change]);
  if (!d.tableMissing) {
    for (const name of d.missingChains) add(ownerOfName(name), { kind: 'chain', name, what: 'missing from the kernel', lines: [] });
    for (const c of d.chains) add(ownerOfName(c.chain), chainChange(c));
    for (const name of d.extraChains) add(ownerOfName(name), { kind: 'chain', name, what: 'in the kernel but not desired', lines: [] });
    for (const name of d.missingSets) add(ownerOfName(name), { kind: kindOf(name), name, what: 'missing from the kernel', lines: [] });
    for (const name of d.extraSets) add(ownerOfName(name), { kind: kindOf(name), name, what: 'in the kernel but not desired', lines: [] });
    for (const s of d.sets) for (const [title, change] of setChanges(s, kindOf(s.set), ownerOfElement, ownerOfName)) add(title, change);
    for (const name of d.missingCounters) add(ownerOfName(name), { kind: 'counter', name, what: 'missing from the kernel', lines: [] });
    for (const name of d.extraCounters) add(ownerOfName(name), { kind: 'counter', name, what: 'in the kernel but not desired', lines: [] });
  }
  const rank = (t: string) => (t === FIXED_GROUP ? 1 : t === UNOWNED_GROUP ? 2 : 0);
  const titles = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return {
    family: render.family,
    identical: isEmptyDiff(d),
    tableMissing: d.tableMissing,
    servicePorts: render.services.length,
    counters: render.counters,
    awaitingDeletion,
    awaitingElements,
    groups: titles.map((title) => ({ title, changes: groups.get(title)! })),
  };
}

function chainChange(c: ChainDiff): ObjectChange {
  const lines = [...c.missing.map((r) => `+ ${r}`), ...c.extra.map((r) => `- ${r}`)];
  if (c.base) lines.push(`+ ${baseText(c.base.desired)}`, `- ${baseText(c.base.live)}`);
  const parts: string[] = [];
  if (c.missing.length || c.extra.length) parts.push(`${c.missing.length} missing, ${c.extra.length} unexpected rules`);
  else if (c.reordered) parts.push('same rules in a different order');
  if (c.base) parts.push(baseDiffers(c.base.desired, c.base.live));
  return { kind: 'chain', name: c.chain, what: parts.join('; '), lines };
}

/** One change per owner of the set's differing elements, plus the declaration (a fixed object's, or the affinity set's service's). */
function setChanges(
  s: SetDiff,
  kind: 'set' | 'map',
  ownerOfElement: (set: string, e: NftElement) => string,
  ownerOfName: (name: string) => string,
): [string, ObjectChange][] {
  const out: [string, ObjectChange][] = [];
  if (s.declaration) {
    const lines = [`+ ${s.declaration.desired}`, `- ${s.declaration.live}`];
    out.push([ownerOfName(s.set), { kind, name: s.set, what: 'declaration differs', lines }]);
  }
  const byOwner = new Map<string, { missing: string[]; extra: string[]; changed: string[] }>();
  const entry = (owner: string) => {
    if (!byOwner.has(owner)) byOwner.set(owner, { missing: [], extra: [], changed: [] });
    return byOwner.get(owner)!;
  };
  for (const e of s.missing) entry(ownerOfElement(s.set, e)).missing.push(`+ ${elementText(e)}`);
  for (const e of s.extra) entry(ownerOfElement(s.set, e)).extra.push(`- ${elementText(e)}`);
  for (const c of s.changed) entry(ownerOfElement(s.set, c.desired)).changed.push(`~ ${elementText(c.desired)} (kernel: ${elementText(c.live)})`);
  for (const [owner, e] of byOwner) {
    const what = `${e.missing.length} missing, ${e.extra.length} unexpected, ${e.changed.length} changed elements`;
    out.push([owner, { kind, name: s.set, what, lines: [...e.missing, ...e.extra, ...e.changed] }]);
  }
  return out;
}

export function formatNftDiff(r: NftDiffReport, ipFamily: string): string {
  const table = `table ${r.family} ${TABLE_NAME}`;
  const pending = r.awaitingDeletion.length
    ? `; ${r.awaitingDeletion.length} stale per-service chains, flushed, await deletion at a later sync (${summary(r.awaitingDeletion)})`
    : '';
  const elements = r.awaitingElements.length
    ? `; ${r.awaitingElements.length} stale set elements await deletion at a later sync (${summary(r.awaitingElements)})`
    : '';
  if (r.identical)
    return `${ipFamily}: converged: ${table} holds exactly the desired chains, rules, sets${r.counters ? ', elements and counters' : ' and elements'}${pending}${elements}\n`;
  if (r.tableMissing) return `${ipFamily}: ${table} is missing from the kernel (${r.servicePorts} service ports not programmed)\n`;
  const out = [`${ipFamily} (${table}): ${r.groups.reduce((n, g) => n + g.changes.length, 0)} objects differ${pending}${elements}`];
  for (const g of r.groups) {
    out.push(`  ${g.title}`);
    for (const c of g.changes) {
      out.push(`    ${c.kind} ${c.name}: ${c.what}`);
      for (const l of c.lines) out.push(`      ${l}`);
    }
  }
  return out.join('\n') + '\n';
}

function summary(names: readonly string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}
