/**
 * Endpoint chains and the load-balancing rules of a policy chain: hairpin
 * masquerade, the affinity update and the DNAT per endpoint; affinity gotos
 * and one `numgen random mod N vmap` per policy chain (upstream
 * writeServiceToEndpointRules and the per-endpoint loop of syncProxyRules).
 */
import type { Endpoint } from '../proxier/types.ts';
import { quote, type NftFamily } from './model.ts';
import type { EndpointNames } from './names.ts';
import { MARK_FOR_MASQUERADE } from './objects.ts';

/** "10.180.0.1:80" / "[fd00::1]:80": the DNAT target as upstream writes it (the endpoint's String()). */
export function dnatTarget(ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/**
 * An endpoint chain's rules, built as literals of their final length: an array grown by push() keeps room for 17 (a
 * render keeps 60,000 of these). Generation A's first rule masquerades the endpoint's own (hairpin) traffic; B's chain
 * (kept only with session affinity, or here with --traffic-counters) has none, @hairpin-connections doing that. Then
 * the affinity update, then the DNAT. `counter` (--traffic-counters): the DNAT rule counts into the named counter of
 * that name (counters.ts).
 */
export function endpointRules(
  ep: Pick<Endpoint, 'ip' | 'port'>,
  proto: string,
  ipX: NftFamily,
  affinitySet: string | null,
  counter: string | null = null,
  hairpinRule = true,
): string[] {
  const dnat = `meta l4proto ${proto} ${counter === null ? '' : `counter name ${quote(counter)} `}dnat to ${dnatTarget(ep)}`;
  if (!hairpinRule) return affinitySet === null ? [dnat] : [`update @${affinitySet} { ${ipX} saddr }`, dnat];
  const masq = `${ipX} saddr ${ep.ip} jump ${MARK_FOR_MASQUERADE}`;
  return affinitySet === null ? [masq, dnat] : [masq, `update @${affinitySet} { ${ipX} saddr }`, dnat];
}

/**
 * Generation B's policy chain without endpoint chains: one DNAT through an anonymous map from a random index to
 * "address . port" (upstream writeServiceToEndpointDNATs), the endpoints in the selection's order. One endpoint
 * keeps the map (`mod 1`), as the rule §1.10 quotes; kubernetes#140723 (not yet seen) writes those without it.
 */
export function dnatMapRule(endpoints: readonly Pick<Endpoint, 'ip' | 'port'>[], proto: string, ipX: NftFamily): string {
  const entries = endpoints.map((ep, i) => `${i} : ${ep.ip} . ${ep.port}`);
  return `meta l4proto ${proto} dnat ${ipX} addr . port to numgen random mod ${endpoints.length} map { ${entries.join(' , ')} }`;
}

/** Affinity lookups first (an established client keeps its endpoint), then the random choice. */
export function policyChainRules(endpoints: readonly EndpointNames[], ipX: NftFamily, affinity: boolean): string[] {
  const entries = endpoints.map((ep, i) => `${i} : goto ${ep.chain}`);
  const random = `numgen random mod ${endpoints.length} vmap { ${entries.join(' , ')} }`;
  return affinity ? [...endpoints.map((ep) => `${ipX} saddr @${ep.affinitySet} goto ${ep.chain}`), random] : [random];
}
