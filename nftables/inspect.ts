/**
 * What the nftables mode shows operators (/debug/rules, /debug/services),
 * built only when asked from the render the mode keeps anyway:
 * - tableText: the whole table as `nft -f` input (`add` lines: the table,
 *   every chain, every set and map, then the rules, then the elements), the
 *   form knftables' Fake.Dump() writes; fed to `nft -f` it rebuilds the table;
 * - objectsOfService: a service port's chains (service-, local-, external-,
 *   firewall-, in upstream's ensureChain order), the keys it holds in the
 *   shared maps and sets ("service-ips[172.30.0.41 . tcp . 80]"), and each
 *   endpoint's own objects: its endpoint- chain or, in generation B without
 *   endpoint chains, its entry in each policy chain's DNAT map
 *   ("service-…/p80 map[1]": numgen's 1 picks it), then a local endpoint's
 *   hairpin-connections element;
 * - refusedLine: the input line nft named in its `file:LINE:COL-COL: Error:`.
 * Traffic (--traffic-counters) comes from the mode's totals (counters.ts).
 */
import type { ServiceObjects as ModeServiceObjects } from '../proxier/mode.ts';
import { endpointString, type ServicePortState } from '../proxier/types.ts';
import { NftError } from './errors.ts';
import { ENDPOINT_PREFIX, endpointNames } from './names.ts';
import { HAIRPIN_CONNECTIONS } from './objects.ts';
import { tableOf, type NftRender } from './render.ts';
import type { ServiceObjects } from './render-service.ts';
import { Transaction } from './transaction.ts';

/** The table the render describes, as `nft -f` input, one rule or element per line. */
export function tableText(render: NftRender): string {
  const table = tableOf(render);
  const tx = new Transaction(render.family);
  tx.addTable(table.comment);
  for (const c of table.chains) tx.addChain(c);
  for (const s of table.sets) tx.addSet(s);
  for (const c of table.chains) for (const r of c.rules) tx.addRule(c.name, r);
  for (const s of table.sets) for (const e of s.elements ?? []) tx.addElement(s.name, e);
  return tx.text();
}

/** Render output per service port key ("ns/name:port/PROTOCOL"). */
export function servicesByKey(render: NftRender): Map<string, ServiceObjects> {
  return new Map(render.services.map((s) => [s.key, s]));
}

/** A service port's objects in a render, or null when the render has none for it. */
export function objectsOfService(byKey: ReadonlyMap<string, ServiceObjects>, state: ServicePortState): ModeServiceObjects | null {
  const sp = state.service;
  const objects = byKey.get(`${sp.key}/${sp.protocol}`);
  if (!objects) return null;
  const chains = new Set(objects.chains.map((c) => c.name));
  // Generation B without endpoint chains: the policy chains DNAT through a numgen map ("0 : 10.0.1.1 . 80 , ...").
  const mapEntries = new Map<string, string[]>();
  for (const c of objects.chains)
    for (const r of c.rules) {
      const m = DNAT_MAP.exec(r);
      if (m === null) continue;
      for (const entry of m[1]!.split(' , ')) {
        const at = entry.indexOf(' : ');
        const target = entry.slice(at + 3);
        mapEntries.set(target, [...(mapEntries.get(target) ?? []), `${c.name} map[${entry.slice(0, at)}]`]);
      }
    }
  // Generation B's hairpin-connections elements are per local endpoint ("10.0.1.1 . 10.0.1.1 . tcp . 80").
  const hairpin = new Map<string, string>();
  for (const { set, element } of objects.elements)
    if (set === HAIRPIN_CONNECTIONS) {
      const [ip, , , port] = element.key.split(' . ');
      hairpin.set(`${ip} . ${port}`, `${set}[${element.key}]`);
    }
  const endpoints = new Map<string, string>();
  for (const ep of state.endpoints) {
    const chain = endpointNames(sp, ep).chain;
    const target = `${ep.ip} . ${ep.port}`;
    const own = chains.has(chain) ? [chain] : [...(mapEntries.get(target) ?? [])];
    if (hairpin.has(target)) own.push(hairpin.get(target)!);
    if (own.length) endpoints.set(endpointString(ep), own.join(' '));
  }
  const service = [...chains].filter((n) => !n.startsWith(ENDPOINT_PREFIX));
  for (const { set, element } of objects.elements) if (set !== HAIRPIN_CONNECTIONS) service.push(`${set}[${element.key}]`);
  return { service, endpoints };
}

/** Generation B's DNAT of a policy chain without endpoint chains (render-endpoints.ts dnatMapRule): its map's entries. */
const DNAT_MAP = /\bdnat ip6? addr \. port to numgen random mod \d+ map \{ (.*) \}$/;

/** The 1-based input line a failed nft run named (`/dev/stdin:12:1-30: Error: ...`), or null. */
export function refusedLine(err: unknown): number | null {
  if (err instanceof NftError) return err.line;
  const text = err instanceof Error ? err.message : String(err);
  const m = /(?:^|\s)[^:\s]+:(\d+):\d+(?:-\d+)?: Error:/m.exec(text);
  return m ? Number(m[1]) : null;
}
