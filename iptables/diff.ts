/**
 * Desired vs live: what `kube-proxy-ts diff` reports. Only kube-proxy's own
 * chains and its jump rules are compared; every rule is normalised first
 * (iptables-save reorders options, adds /32, rewrites marks and
 * probabilities), so a converged node diffs clean. Differences are grouped
 * per service, then top-level chains, then jump rules.
 *
 * Rule order matters inside per-service chains (the probability ladder) and
 * for the last rule of KUBE-SERVICES; elsewhere (the order of services in
 * KUBE-SERVICES, which upstream writes in random map order) only the set of
 * rules is compared.
 */
import type { IPFamily } from '../proxier/types.ts';
import { chainOwner, fixedChain, isServiceChain, KUBE_PROXY_CANARY, KUBE_SERVICES } from './chains.ts';
import { jumpRuleChanges } from './jumps.ts';
import { normalizeRuleSpec } from './rule-normalize.ts';
import { findOption, parseRuleWords, tokenizeRule } from './rule-words.ts';
import type { Chain, Ruleset } from './ruleset.ts';

export interface ChainDiff {
  readonly table: string;
  readonly chain: string;
  readonly status: 'missing' | 'unexpected' | 'changed';
  /** Rules the kernel lacks (desired form). */
  readonly missingRules: readonly string[];
  /** Rules the kernel has that should not be there (live form). */
  readonly extraRules: readonly string[];
  /** Same rules, different order (where order matters). */
  readonly reordered: boolean;
}

export interface DiffGroup {
  /** "ns/svc:port", "top-level chains", "jump rules" or "stale chains". */
  readonly title: string;
  readonly chains: readonly ChainDiff[];
}

export interface RulesetDiff {
  readonly family: IPFamily;
  readonly identical: boolean;
  readonly groups: readonly DiffGroup[];
}

const LAST_RULE_MARK = 'NOTE: this must be the last rule in this chain';

function ownedChains(rs: Ruleset, table: string): Map<string, Chain> {
  const out = new Map<string, Chain>();
  for (const c of rs.tables.find((t) => t.name === table)?.chains ?? []) {
    // Either mode's chains and kubelet's KUBE-FIREWALL (which kube-proxy may write); the canary is kube-proxy's
    // but deliberately not part of the desired ruleset.
    if (c.policy === null && c.name !== KUBE_PROXY_CANARY && chainOwner(c.name) !== null) out.set(c.name, c);
  }
  return out;
}

function compareChain(table: string, want: Chain | undefined, have: Chain | undefined, family: IPFamily): ChainDiff | null {
  const name = (want ?? have)!.name;
  if (!have) return { table, chain: name, status: 'missing', missingRules: want!.rules, extraRules: [], reordered: false };
  if (!want) return { table, chain: name, status: 'unexpected', missingRules: [], extraRules: have.rules, reordered: false };
  // Each side's rules read once: a packed chain (the render cache's) splits its text on every read of `rules`.
  const wantRules = want.rules;
  const haveRules = have.rules;
  const w = wantRules.map((r) => normalizeRuleSpec(r, family));
  const h = haveRules.map((r) => normalizeRuleSpec(r, family));
  const missingRules: string[] = [];
  const extraRules: string[] = [];
  const pool = new Map<string, number>();
  for (const r of h) pool.set(r, (pool.get(r) ?? 0) + 1);
  w.forEach((r, i) => {
    const n = pool.get(r) ?? 0;
    if (n > 0) pool.set(r, n - 1);
    else missingRules.push(wantRules[i]!);
  });
  h.forEach((r, i) => {
    if (!w.includes(r)) extraRules.push(haveRules[i]!);
  });
  if (h.length > w.length && extraRules.length === 0) extraRules.push(...haveRules.slice(w.length)); // duplicates
  let reordered = false;
  if (!missingRules.length && !extraRules.length) {
    const orderMatters = !(fixedChain(name)?.orderFreeIn?.includes(table) ?? false);
    const lastOk = name !== KUBE_SERVICES || !w.at(-1)?.includes(LAST_RULE_MARK) || h.at(-1) === w.at(-1);
    reordered = (orderMatters && w.some((r, i) => r !== h[i])) || !lastOk;
  }
  if (!missingRules.length && !extraRules.length && !reordered) return null;
  return { table, chain: name, status: 'changed', missingRules, extraRules, reordered };
}

/** Service name from the comments of a chain's rules (works for chains no longer desired). */
function serviceOfChain(chain: Chain): string | null {
  for (const r of chain.rules) {
    let comment: string | undefined;
    try {
      comment = findOption(parseRuleWords(tokenizeRule(r)), 'comment', '--comment')?.values[0];
    } catch {
      continue;
    }
    if (comment === undefined || !comment.includes('/')) continue;
    const arrow = comment.indexOf(' -> ');
    return arrow >= 0 ? comment.slice(0, arrow) : comment.replace(/ (cluster IP|external IP|loadbalancer IP)$/, '');
  }
  return null;
}

export function diffRulesets(desired: Ruleset, live: Ruleset, opts: { serviceOf?: (chain: string) => string | null } = {}): RulesetDiff {
  const family = desired.family;
  const byGroup = new Map<string, ChainDiff[]>();
  const add = (title: string, d: ChainDiff): void => {
    const list = byGroup.get(title) ?? [];
    list.push(d);
    byGroup.set(title, list);
  };
  for (const table of ['filter', 'nat']) {
    const want = ownedChains(desired, table);
    const have = ownedChains(live, table);
    for (const name of new Set([...want.keys(), ...have.keys()])) {
      // kubelet's chain is ours to compare only where we write it (IPv4 with localhost NodePorts): kubelet
      // writes it for IPv4 only since 1.24, for both families before, and whatever it holds then is kubelet's.
      if (!want.has(name) && chainOwner(name) === 'kubelet') continue;
      const d = compareChain(table, want.get(name), have.get(name), family);
      if (!d) continue;
      if (!isServiceChain(name)) add('top-level chains', d);
      else {
        const svc = opts.serviceOf?.(name) ?? serviceOfChain((want.get(name) ?? have.get(name))!);
        add(d.status === 'unexpected' ? `stale chains${svc ? ` (${svc})` : ''}` : `service ${svc ?? '(unknown)'}`, d);
      }
    }
  }
  // Jump rules, compared whole: each desired jump must exist in its built-in chain, and no other
  // jump to kube-proxy's chains may (an older kube-proxy's variant).
  const jumps = jumpRuleChanges(desired, live);
  for (const t of desired.tables) {
    for (const c of t.chains) {
      if (c.policy === null) continue;
      const here = (j: { table: string; chain: string }): boolean => j.table === t.name && j.chain === c.name;
      const missingRules = jumps.missing
        .filter(here)
        .map((j) => j.rule)
        .reverse();
      const extraRules = jumps.stale.filter(here).map((j) => j.rule);
      if (missingRules.length || extraRules.length)
        add('jump rules', { table: t.name, chain: c.name, status: 'changed', missingRules, extraRules, reordered: false });
    }
  }
  const groups = [...byGroup.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)).map(([title, chains]) => ({ title, chains }));
  return { family, identical: groups.length === 0, groups };
}

function rank(title: string): number {
  return title.startsWith('service ') ? 0 : title.startsWith('stale') ? 1 : title === 'top-level chains' ? 2 : 3;
}

/** The report operators read. */
export function formatDiff(d: RulesetDiff): string {
  if (d.identical) return `${d.family}: converged: the kernel holds exactly the desired rules\n`;
  const out: string[] = [`${d.family}: ${d.groups.reduce((n, g) => n + g.chains.length, 0)} chains differ`];
  for (const g of d.groups) {
    out.push(`  ${g.title}`);
    for (const c of g.chains) {
      const what =
        c.status === 'missing'
          ? 'missing from the kernel'
          : c.status === 'unexpected'
            ? 'in the kernel but not desired'
            : c.reordered
              ? 'same rules in a different order'
              : `${c.missingRules.length} missing, ${c.extraRules.length} unexpected`;
      out.push(`    ${c.table} ${c.chain}: ${what}`);
      for (const r of c.missingRules) out.push(`      + -A ${c.chain} ${r}`);
      for (const r of c.extraRules) out.push(`      - -A ${c.chain} ${r}`);
    }
  }
  return out.join('\n') + '\n';
}
