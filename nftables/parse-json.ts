/**
 * `nft -j list table <family> kube-proxy` (JSON schema 1) -> the table model,
 * with every rule and element in canonical text (rule-print.ts), ready to be
 * compared with a render (normalize.ts, diff.ts) or traced. What nft 1.0.6
 * leaves out of its JSON (the table's and chains' comments, the `dynamic`
 * flag of sets it adds itself) is simply absent here; normalize.ts drops the
 * same from the desired side.
 */
import { parseIP } from '../proxier/ip.ts';
import type { BaseChainSpec, ChainType, Hook, NftChain, NftElement, NftFamily, NftSet, NftTable } from './model.ts';
import { baseChainOf, scanChains, scanNames, type LiveBaseChain, type NameKind } from './names-json.ts';
import { isAffinitySetName } from './names.ts';
import { printRule, printVerdict } from './rule-print.ts';
import { literalText, ruleFromJson, verdictOf } from './rule-json.ts';

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);

export class ListParseError extends Error {
  constructor(reason: string) {
    super(`cannot read nft JSON listing: ${reason}`);
    this.name = 'ListParseError';
  }
}

/** An element key part in canonical text (addresses normalised). */
function part(o: unknown): string {
  const t = literalText(o);
  if (t.includes('/')) return t;
  return parseIP(t)?.text ?? t;
}

function keyText(o: unknown): string {
  if (isObj(o) && Array.isArray(o['concat'])) return o['concat'].map(part).join(' . ');
  return part(o);
}

function element(raw: unknown, isMap: boolean): NftElement {
  let keyObj: unknown = raw;
  let value: string | null = null;
  if (isMap) {
    if (!Array.isArray(raw) || raw.length !== 2) throw new ListParseError(`map element ${JSON.stringify(raw)}`);
    keyObj = raw[0];
    value = printVerdict(verdictOf(raw[1]));
  }
  let comment: string | null = null;
  if (isObj(keyObj) && isObj(keyObj['elem'])) {
    const e = keyObj['elem'];
    comment = typeof e['comment'] === 'string' ? e['comment'] : null;
    keyObj = e['val'];
  }
  return { key: keyText(keyObj), value, comment };
}

function set(o: J, kind: 'set' | 'map'): NftSet {
  const type = Array.isArray(o['type']) ? o['type'].join(' . ') : String(o['type']);
  const flags = Array.isArray(o['flags']) ? o['flags'].map(String) : typeof o['flags'] === 'string' ? [o['flags']] : [];
  const name = String(o['name']);
  const elems = Array.isArray(o['elem']) ? o['elem'] : [];
  return {
    name,
    kind,
    type: kind === 'map' ? `${type} : ${String(o['map'])}` : type,
    flags,
    timeout: typeof o['timeout'] === 'number' ? o['timeout'] : null,
    comment: typeof o['comment'] === 'string' ? o['comment'] : null,
    elements: isAffinitySetName(name) ? null : elems.map((e) => element(e, kind === 'map')),
  };
}

function base(o: J): BaseChainSpec | null {
  if (typeof o['hook'] !== 'string') return null;
  const spec = { type: String(o['type']) as ChainType, hook: o['hook'] as Hook, priority: Number(o['prio']) };
  // nft lists `"policy": "accept"` for every base chain; only another one (drop, set from outside) is kept.
  return o['policy'] === 'drop' ? { ...spec, policy: 'drop' } : spec;
}

/** A JSON listing's `nftables` array; ListParseError when the text is not such a document. */
function listingItems(text: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ListParseError((err as Error).message);
  }
  if (!isObj(doc) || !Array.isArray(doc['nftables'])) throw new ListParseError('no "nftables" array');
  return doc['nftables'] as unknown[];
}

/** Parses the listing; null when it holds no such table (an empty listing). */
export function parseNftJson(text: string, family: NftFamily, tableName = 'kube-proxy'): NftTable | null {
  let found = false;
  let comment: string | null = null;
  const chains = new Map<string, { spec: J; rules: string[] }>();
  const sets: NftSet[] = [];
  const counters: string[] = [];
  for (const item of listingItems(text)) {
    if (!isObj(item)) continue;
    const [kind] = Object.keys(item);
    const o = item[kind!];
    if (!isObj(o)) continue;
    if (kind === 'metainfo') {
      const version = o['json_schema_version'];
      if (version !== undefined && version !== 1) throw new ListParseError(`JSON schema version ${String(version)}, expected 1`);
      continue;
    }
    const own = (o['family'] === family && o['table'] === tableName) || (kind === 'table' && o['family'] === family && o['name'] === tableName);
    if (!own) continue;
    if (kind === 'table') {
      found = true;
      comment = typeof o['comment'] === 'string' ? o['comment'] : null;
    } else if (kind === 'chain') chains.set(String(o['name']), { spec: o, rules: [] });
    else if (kind === 'rule') {
      const c = chains.get(String(o['chain']));
      if (!c) throw new ListParseError(`rule in unknown chain ${String(o['chain'])}`);
      const exprs = Array.isArray(o['expr']) ? o['expr'] : [];
      c.rules.push(printRule(ruleFromJson(exprs, typeof o['comment'] === 'string' ? o['comment'] : null)));
    } else if (kind === 'set' || kind === 'map') sets.push(set(o, kind));
    else if (kind === 'counter') counters.push(String(o['name']));
  }
  if (!found) return null;
  const out: NftChain[] = [...chains].map(([name, c]) => ({
    name,
    base: base(c.spec),
    comment: typeof c.spec['comment'] === 'string' ? c.spec['comment'] : null,
    rules: c.rules,
  }));
  return { family, name: tableName, comment, chains: out, sets, ...(counters.length > 0 ? { counters } : {}) };
}

/**
 * Items of one kind ("chain", "set", "map", "table") of the kube-proxy table in a JSON listing: read item by item
 * (names-json.ts) when the scan can vouch for the whole document, else through JSON.parse.
 */
export function namesIn(text: string, kind: NameKind, family: NftFamily, tableName = 'kube-proxy'): string[] {
  const scanned = scanNames(text, kind, family, tableName);
  if (scanned !== null) return scanned;
  const out: string[] = [];
  for (const item of listingItems(text)) {
    if (!isObj(item) || !isObj(item[kind])) continue;
    const o = item[kind] as J;
    const table = kind === 'table' ? o['name'] : o['table'];
    if (o['family'] === family && table === tableName) out.push(String(o['name']));
  }
  return out;
}

/** The kube-proxy table's chain names and base chains in a chain listing (`nft -t -j list chains F`), as namesIn reads it. */
export function chainsIn(text: string, family: NftFamily, tableName = 'kube-proxy'): { names: string[]; bases: LiveBaseChain[] } {
  const scanned = scanChains(text, family, tableName);
  if (scanned !== null) return scanned;
  const names: string[] = [];
  const bases: LiveBaseChain[] = [];
  for (const item of listingItems(text)) {
    if (!isObj(item) || !isObj(item['chain'])) continue;
    const o = item['chain'];
    if (o['family'] !== family || o['table'] !== tableName) continue;
    const name = String(o['name']);
    names.push(name);
    const base = baseChainOf(name, o);
    if (base !== null) bases.push(base);
  }
  return { names, bases };
}
