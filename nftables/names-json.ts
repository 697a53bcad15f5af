/**
 * The names of one table's chains, sets, maps (or tables) in nft's JSON
 * listing (`nft -t -j list chains F`, ...), without building the listing's
 * objects.
 *
 * Why: at 10,000 services the table has ~60,000 chains, an 8 MB listing that
 * the damage check reads every sync period and a full sync reads once.
 * JSON.parse of it makes ~60,000 objects that are all alive until the walk
 * over them ends, so they outlive the young generation: the agent's resident
 * size rose by 9-18 MiB at each check. Here each item is matched on its own
 * and only its name is kept.
 *
 * How: nft prints every chain, set, map and table as a flat object,
 * `{"chain": {"family": "ip", "table": "kube-proxy", "name": "...", ...}}`,
 * whose values are strings, numbers or arrays of them (with -t, no elements).
 * ITEM_OR_KEY matches such an item and FIELD its members, in any order.
 * Inside a JSON string every quote is escaped, so neither can start inside
 * one. The scan is trusted only when the document has the listing's envelope
 * and every `"KIND": {` key was matched as part of a whole item; otherwise
 * (another nft's output, say) parse-json.ts's namesIn reads the document
 * through JSON.parse.
 */
import type { NftFamily } from './model.ts';

export type NameKind = 'chain' | 'set' | 'map' | 'table';

const STR = String.raw`"(?:[^"\\]|\\.)*"`;
const VALUE = String.raw`(?:${STR}|-?\d+|\[[^\[\]{}"]*(?:${STR}[^\[\]{}"]*)*\]|true|false|null)`;
const MEMBERS = String.raw`(?:${STR}\s*:\s*${VALUE}(?:\s*,\s*${STR}\s*:\s*${VALUE})*)?`;
// An item matched whole (1: kind, 2: members), or a kind's key that was not (3): the scan cannot vouch then.
const ITEM_OR_KEY = new RegExp(String.raw`\{\s*"(chain|set|map|table)"\s*:\s*\{\s*(${MEMBERS})\s*\}\s*\}|"(chain|set|map|table)"\s*:\s*\{`, 'g');
const FIELD = new RegExp(String.raw`"(family|table|name)"\s*:\s*(${STR})`, 'g');
/** A base chain's hook fields (in a chain item whose body has a "hook"). */
const HOOK_FIELD = new RegExp(String.raw`"(type|hook|prio|policy)"\s*:\s*(${STR}|-?\d+)`, 'g');
const HOOK_KEY = /"hook"\s*:/;
const HEAD = /^\s*\{\s*"nftables"\s*:\s*\[/;

/** The listing's envelope, `{"nftables": [` ... `]}`: a listing cut short fails it. */
function enveloped(text: string): boolean {
  if (!HEAD.test(text)) return false;
  let i = text.length - 1;
  while (i >= 0 && /\s/.test(text[i]!)) i--;
  if (text[i] !== '}') return false;
  i--;
  while (i >= 0 && /\s/.test(text[i]!)) i--;
  return text[i] === ']';
}

const unquote = (s: string): string => (s.includes('\\') ? (JSON.parse(s) as string) : s.slice(1, -1));

/** What a chain listing says of a base chain: its type, hook, priority and policy, as nft prints them. */
export interface LiveBaseChain {
  readonly name: string;
  readonly type: string;
  readonly hook: string;
  readonly priority: number;
  readonly policy: string;
}

/** The names, or null when the scan cannot vouch for having read every item of the kind. */
export function scanNames(text: string, kind: NameKind, family: NftFamily, tableName: string): string[] | null {
  return scan(text, kind, family, tableName, null);
}

/** A chain listing's names and base chains (those with a hook), or null when the scan cannot vouch for it. */
export function scanChains(text: string, family: NftFamily, tableName: string): { names: string[]; bases: LiveBaseChain[] } | null {
  const bases: LiveBaseChain[] = [];
  const names = scan(text, 'chain', family, tableName, bases);
  return names === null ? null : { names, bases };
}

/** A base chain's fields from an item's members; null when the item has no hook. */
export function baseChainOf(name: string, fields: Readonly<Record<string, unknown>>): LiveBaseChain | null {
  if (typeof fields['hook'] !== 'string') return null;
  return {
    name,
    type: String(fields['type']),
    hook: fields['hook'],
    priority: Number(fields['prio']),
    policy: typeof fields['policy'] === 'string' ? fields['policy'] : 'accept',
  };
}

function scan(text: string, kind: NameKind, family: NftFamily, tableName: string, bases: LiveBaseChain[] | null): string[] | null {
  if (!enveloped(text)) return null;
  const out: string[] = [];
  for (const m of text.matchAll(ITEM_OR_KEY)) {
    if (m[3] !== undefined) {
      if (m[3] === kind) return null;
      continue;
    }
    if (m[1] !== kind) continue;
    let fam: string | undefined;
    let table: string | undefined;
    let name: string | undefined;
    // exec on the one FIELD (this runs synchronously): matchAll would clone the expression for every item.
    const body = m[2]!;
    FIELD.lastIndex = 0;
    for (let f = FIELD.exec(body); f !== null; f = FIELD.exec(body)) {
      if (f[1] === 'family') fam = unquote(f[2]!);
      else if (f[1] === 'table') table = unquote(f[2]!);
      else name = unquote(f[2]!);
    }
    if (fam === family && (kind === 'table' ? name : table) === tableName && name !== undefined) {
      out.push(name);
      if (bases !== null && HOOK_KEY.test(body)) {
        const fields: Record<string, unknown> = {};
        HOOK_FIELD.lastIndex = 0;
        for (let f = HOOK_FIELD.exec(body); f !== null; f = HOOK_FIELD.exec(body))
          fields[f[1]!] = f[2]!.startsWith('"') ? unquote(f[2]!) : Number(f[2]!);
        const base = baseChainOf(name, fields);
        if (base !== null) bases.push(base);
      }
    }
  }
  return out;
}
