/**
 * Desired table vs live table, both normalised (normalize.ts): which chains,
 * rules, sets and elements are missing, extra or changed. Pure; what a
 * future `kube-proxy-ts diff --mode=nftables` prints and what a sync can use
 * to notice a damaged table.
 */
import type { BaseChainSpec, NftElement, NftSet, NftTable } from './model.ts';
import { normalizeTable } from './normalize.ts';

export interface ChainDiff {
  readonly chain: string;
  /** Desired rules absent from the live chain. */
  readonly missing: readonly string[];
  /** Live rules nobody wants. */
  readonly extra: readonly string[];
  /** Same rules, other order (order matters in a chain). */
  readonly reordered: boolean;
  /** Type, hook, priority or policy differ (null: a regular chain); a listing's `policy drop` is in `live.policy`. */
  readonly base: { readonly desired: BaseChainSpec | null; readonly live: BaseChainSpec | null } | null;
}

export interface SetDiff {
  readonly set: string;
  /** The declarations differ (type, flags, timeout, comment). */
  readonly declaration: { readonly desired: string; readonly live: string } | null;
  readonly missing: readonly NftElement[];
  readonly extra: readonly NftElement[];
  /** Same key, other value or comment. */
  readonly changed: readonly { readonly desired: NftElement; readonly live: NftElement }[];
}

export interface TableDiff {
  /** The live table does not exist at all. */
  readonly tableMissing: boolean;
  readonly missingChains: readonly string[];
  readonly extraChains: readonly string[];
  readonly chains: readonly ChainDiff[];
  readonly missingSets: readonly string[];
  readonly extraSets: readonly string[];
  readonly sets: readonly SetDiff[];
  /** Named counters (--traffic-counters) the render wants and the kernel lacks, and the other way round. */
  readonly missingCounters: readonly string[];
  readonly extraCounters: readonly string[];
}

export function isEmptyDiff(d: TableDiff): boolean {
  return (
    !d.tableMissing &&
    [d.missingChains, d.extraChains, d.chains, d.missingSets, d.extraSets, d.sets, d.missingCounters, d.extraCounters].every((l) => l.length === 0)
  );
}

function multisetMinus(a: readonly string[], b: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const n = counts.get(x) ?? 0;
    if (n > 0) counts.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

function declText(s: NftSet): string {
  const flags = s.flags.length ? ` flags ${s.flags.join(',')} ;` : '';
  const timeout = s.timeout === null ? '' : ` timeout ${s.timeout}s ;`;
  const comment = s.comment === null ? '' : ` comment "${s.comment}" ;`;
  return `${s.kind} { type ${s.type} ;${flags}${timeout}${comment} }`;
}

function diffSet(d: NftSet, l: NftSet): SetDiff | null {
  const declaration = declText(d) === declText(l) ? null : { desired: declText(d), live: declText(l) };
  const missing: NftElement[] = [];
  const extra: NftElement[] = [];
  const changed: { desired: NftElement; live: NftElement }[] = [];
  if (d.elements !== null && l.elements !== null) {
    const live = new Map(l.elements.map((e) => [e.key, e]));
    const want = new Map(d.elements.map((e) => [e.key, e]));
    for (const e of d.elements) {
      const x = live.get(e.key);
      if (x === undefined) missing.push(e);
      else if (x.value !== e.value || x.comment !== e.comment) changed.push({ desired: e, live: x });
    }
    for (const e of l.elements) if (!want.has(e.key)) extra.push(e);
  }
  if (declaration === null && missing.length + extra.length + changed.length === 0) return null;
  return { set: d.name, declaration, missing, extra, changed };
}

/** Names in `a` and not in `b`, sorted. */
function without(a: readonly string[] | undefined, b: readonly string[] | undefined): string[] {
  const other = new Set(b ?? []);
  return (a ?? []).filter((n) => !other.has(n)).sort();
}

export function diffTables(desiredRaw: NftTable, liveRaw: NftTable | null): TableDiff {
  const desired = normalizeTable(desiredRaw);
  if (liveRaw === null) {
    const missingChains = desired.chains.map((c) => c.name);
    return {
      tableMissing: true,
      missingChains,
      extraChains: [],
      chains: [],
      missingSets: desired.sets.map((s) => s.name),
      extraSets: [],
      sets: [],
      missingCounters: [...(desiredRaw.counters ?? [])],
      extraCounters: [],
    };
  }
  const live = normalizeTable(liveRaw);
  const liveChains = new Map(live.chains.map((c) => [c.name, c]));
  const wantChains = new Set(desired.chains.map((c) => c.name));
  const chains: ChainDiff[] = [];
  for (const c of desired.chains) {
    const l = liveChains.get(c.name);
    if (!l) continue;
    const missing = multisetMinus(c.rules, l.rules);
    const extra = multisetMinus(l.rules, c.rules);
    const reordered = missing.length === 0 && extra.length === 0 && c.rules.some((r, i) => r !== l.rules[i]);
    const base = JSON.stringify(c.base) === JSON.stringify(l.base) ? null : { desired: c.base, live: l.base };
    if (missing.length || extra.length || reordered || base) chains.push({ chain: c.name, missing, extra, reordered, base });
  }
  const liveSets = new Map(live.sets.map((s) => [s.name, s]));
  const wantSets = new Set(desired.sets.map((s) => s.name));
  const sets: SetDiff[] = [];
  for (const s of desired.sets) {
    const l = liveSets.get(s.name);
    const d = l ? diffSet(s, l) : null;
    if (d) sets.push(d);
  }
  return {
    tableMissing: false,
    missingChains: desired.chains.filter((c) => !liveChains.has(c.name)).map((c) => c.name),
    extraChains: live.chains.filter((c) => !wantChains.has(c.name)).map((c) => c.name),
    chains,
    missingSets: desired.sets.filter((s) => !liveSets.has(s.name)).map((s) => s.name),
    extraSets: live.sets.filter((s) => !wantSets.has(s.name)).map((s) => s.name),
    sets,
    missingCounters: without(desiredRaw.counters, liveRaw.counters),
    extraCounters: without(liveRaw.counters, desiredRaw.counters),
  };
}
