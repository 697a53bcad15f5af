/**
 * One comparable form of a table, applied the same way to a render and to a
 * parsed `nft -j list`: rules in canonical text (rule-print.ts), element keys
 * with normalised addresses, chains, sets and elements sorted by name/key.
 *
 * Dropped from both sides, because nft 1.0.6's JSON does not carry them (so a
 * live table could never match): the table comment, chain comments, and the
 * `dynamic` set flag (kept in the declaration we write; the kernel adds it
 * anyway, which is why upstream writes it). Affinity sets' contents are
 * packet-path state and never compared.
 */
import { parseIP } from '../proxier/ip.ts';
import type { NftChain, NftElement, NftSet, NftTable } from './model.ts';
import { normalizeRule } from './rule-print.ts';

const byName = <T extends { readonly name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function normalizeKey(key: string): string {
  return key
    .split(' . ')
    .map((p) => (p.includes('/') ? p : (parseIP(p)?.text ?? p)))
    .join(' . ');
}

export function normalizeElement(e: NftElement): NftElement {
  return { key: normalizeKey(e.key), value: e.value, comment: e.comment };
}

function normalizeChain(c: NftChain): NftChain {
  return { name: c.name, base: c.base, comment: null, rules: c.rules.map(normalizeRule) };
}

function normalizeSet(s: NftSet): NftSet {
  const elements = s.elements === null ? null : s.elements.map(normalizeElement).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { ...s, flags: s.flags.filter((f) => f !== 'dynamic').sort(), elements };
}

export function normalizeTable(t: NftTable): NftTable {
  return {
    family: t.family,
    name: t.name,
    comment: null,
    chains: t.chains.map(normalizeChain).sort(byName),
    sets: t.sets.map(normalizeSet).sort(byName),
  };
}
