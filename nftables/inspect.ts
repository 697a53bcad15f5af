/**
 * What the nftables mode shows operators (/debug/rules, /debug/services),
 * built only when asked from the render the mode keeps anyway:
 * - tableText: the whole table as `nft -f` input (`add` lines: the table,
 *   every chain, every set and map, then the rules, then the elements), the
 *   form knftables' Fake.Dump() writes; fed to `nft -f` it rebuilds the table;
 * - objectsOfService: a service port's chains (service-, local-, external-,
 *   firewall-, in upstream's ensureChain order), the keys it holds in the
 *   shared maps and sets ("service-ips[172.30.0.41 . tcp . 80]"), and each
 *   endpoint's endpoint- chain;
 * - refusedLine: the input line nft named in its `file:LINE:COL-COL: Error:`.
 * Traffic (--traffic-counters) comes from the mode's totals (counters.ts).
 */
import type { ServiceObjects as ModeServiceObjects } from '../proxier/mode.ts';
import { endpointString, type ServicePortState } from '../proxier/types.ts';
import { NftError } from './errors.ts';
import { ENDPOINT_PREFIX, endpointNames } from './names.ts';
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
  const endpoints = new Map<string, string>();
  for (const ep of state.endpoints) {
    const chain = endpointNames(sp, ep).chain;
    if (chains.has(chain)) endpoints.set(endpointString(ep), chain);
  }
  const service = [...chains].filter((n) => !n.startsWith(ENDPOINT_PREFIX));
  for (const { set, element } of objects.elements) service.push(`${set}[${element.key}]`);
  return { service, endpoints };
}

/** The 1-based input line a failed nft run named (`/dev/stdin:12:1-30: Error: ...`), or null. */
export function refusedLine(err: unknown): number | null {
  if (err instanceof NftError) return err.line;
  const text = err instanceof Error ? err.message : String(err);
  const m = /(?:^|\s)[^:\s]+:(\d+):\d+(?:-\d+)?: Error:/m.exec(text);
  return m ? Number(m[1]) : null;
}
