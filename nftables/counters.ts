/**
 * --traffic-counters in the nftables mode: named counters, one per endpoint
 * chain and of the chain's name, which its DNAT rule counts into
 * (`meta l4proto tcp counter name "endpoint-…" dnat to 10.180.0.1:80`).
 * Upstream's nftables ruleset has no counters; this adds them only when asked.
 *
 * Why named counters rather than a `counter` statement in the rule: a named
 * counter is an object of the table, apart from the rules. `add counter` of
 * one that exists keeps its values (nf_tables_newobj: counters have no
 * update), so the full syncs that rewrite every chain (hourly, after any
 * failure) and a chain rewritten for an endpoint that came back leave what it
 * counted where it was, and the counters are read without listing a rule.
 * The mode reads them with `nft -j reset counters table ip kube-proxy` and
 * adds up the readings: nft 1.0.6 loads its whole cache of the table to list
 * counters (6.5 s at 10,000 services), not to reset them (0.9 s for the same
 * 50,000; bench/nftables-counters.ts). A counter lives as long as its
 * endpoint chain: it is deleted with the chain (the stale-chain deletion),
 * and a full sync without the flag deletes those an earlier run made.
 *
 * Rules in the nat table see only the first packet of each connection, so
 * "packets" are new connections (TCP) or flows (UDP), as in the iptables
 * mode's KUBE-SEP counters.
 *
 * Pure: parsing the listing and naming each counter's service and endpoint.
 */
import type { CounterReading } from '../proxier/traffic-totals.ts';
import type { NftFamily } from './model.ts';
import { ENDPOINT_PREFIX } from './names.ts';
import { PackedChain } from './packed-chain.ts';
import type { NftRender } from './render.ts';

/** A named counter as the kernel holds it now. */
export interface CounterValue {
  readonly name: string;
  readonly packets: number;
  readonly bytes: number;
}

const STR = String.raw`"(?:[^"\\]|\\.)*"`;
// One counter item with flat members (strings and numbers); its members are read by FIELD.
const ITEM = new RegExp(String.raw`\{\s*"counter"\s*:\s*\{((?:[^{}"\[\]]|${STR})*)\}\s*\}`, 'g');
const KEY = /"counter"\s*:/g;
const FIELD = new RegExp(String.raw`"(family|table|name|packets|bytes)"\s*:\s*(${STR}|\d+)`, 'g');

const unquote = (s: string): string => (s.includes('\\') ? (JSON.parse(s) as string) : s.slice(1, -1));

/**
 * The counters of one table in `nft -j list counters table <family> <table>` output. Read item by item (a listing of
 * 50,000 counters is ~7 MB: JSON.parse would make as many objects at once); when the scan cannot vouch for every
 * item (a `"counter":` key it did not match whole), through JSON.parse. Throws when the text is not a listing.
 */
export function parseCounterValues(text: string, family: NftFamily, table: string): CounterValue[] {
  const out: CounterValue[] = [];
  let items = 0;
  for (const m of text.matchAll(ITEM)) {
    items++;
    const body = m[1]!;
    let fam: string | undefined;
    let tbl: string | undefined;
    let name: string | undefined;
    let packets = 0;
    let bytes = 0;
    for (const f of body.matchAll(FIELD)) {
      const v = f[2]!;
      if (f[1] === 'family') fam = unquote(v);
      else if (f[1] === 'table') tbl = unquote(v);
      else if (f[1] === 'name') name = unquote(v);
      else if (f[1] === 'packets') packets = Number(v);
      else bytes = Number(v);
    }
    if (fam === family && tbl === table && name !== undefined) out.push({ name, packets, bytes });
  }
  if (items === (text.match(KEY)?.length ?? 0) && /^\s*\{\s*"nftables"\s*:\s*\[/.test(text)) return out;
  return parseCounterValuesSlowly(text, family, table);
}

function parseCounterValuesSlowly(text: string, family: NftFamily, table: string): CounterValue[] {
  const doc = JSON.parse(text) as unknown;
  const items = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['nftables'] : undefined;
  if (!Array.isArray(items)) throw new Error('cannot read nft JSON listing: no "nftables" array');
  const out: CounterValue[] = [];
  for (const item of items) {
    const c = (item as Record<string, unknown> | null)?.['counter'] as Record<string, unknown> | undefined;
    if (typeof c !== 'object' || c === null || c['family'] !== family || c['table'] !== table) continue;
    out.push({ name: String(c['name']), packets: Number(c['packets'] ?? 0), bytes: Number(c['bytes'] ?? 0) });
  }
  return out;
}

/** Whose traffic a counter counts: the service port ("ns/name:port") and the endpoint ("ip:port", "[ip]:port"). */
export interface CounterOwner {
  readonly service: string;
  readonly endpoint: string;
}

/**
 * Each endpoint chain of a render -> its service port and endpoint: the service port from the ServiceObjects key
 * ("ns/name:port/PROTOCOL"), the endpoint from the chain's DNAT rule; exact whatever the name holds (a name made of
 * characters nft cannot take, from an --objects file, has them replaced; see names.ts).
 */
export function counterOwners(render: NftRender): Map<string, CounterOwner> {
  const out = new Map<string, CounterOwner>();
  if (!render.counters) return out;
  for (const svc of render.services) {
    const service = svc.key.slice(0, svc.key.lastIndexOf('/'));
    for (const c of svc.chains) {
      if (!c.name.startsWith(ENDPOINT_PREFIX)) continue;
      const endpoint = dnatTargetIn(c instanceof PackedChain ? c.text : c.rules.join('\n'));
      if (endpoint !== null) out.set(c.name, { service, endpoint });
    }
  }
  return out;
}

/** The DNAT target of an endpoint chain's rules (one per line). */
const dnatTargetIn = (text: string): string | null => {
  const at = text.indexOf(' dnat to ');
  return at < 0 ? null : /^\S+/.exec(text.slice(at + 9))![0];
};

/** The readings of the counters whose owners are known (others, of chains awaiting deletion, are left out). */
export function counterReadings(values: readonly CounterValue[], owners: ReadonlyMap<string, CounterOwner>): CounterReading[] {
  const out: CounterReading[] = [];
  for (const v of values) {
    const owner = owners.get(v.name);
    if (owner) out.push({ object: v.name, service: owner.service, endpoint: owner.endpoint, packets: v.packets, bytes: v.bytes });
  }
  return out;
}
