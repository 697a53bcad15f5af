/**
 * Endpoint chains and the load-balancing rules of a policy chain: hairpin
 * masquerade, the affinity update and the DNAT per endpoint; affinity gotos
 * and one `numgen random mod N vmap` per policy chain (upstream
 * writeServiceToEndpointRules and the per-endpoint loop of syncProxyRules).
 */
import type { Endpoint } from '../proxier/types.ts';
import type { NftFamily } from './model.ts';
import type { EndpointNames } from './names.ts';
import { MARK_FOR_MASQUERADE } from './objects.ts';

/** "10.180.0.1:80" / "[fd00::1]:80": the DNAT target as upstream writes it (the endpoint's String()). */
export function dnatTarget(ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

export function endpointRules(ep: Pick<Endpoint, 'ip' | 'port'>, proto: string, ipX: NftFamily, affinitySet: string | null): string[] {
  const rules = [`${ipX} saddr ${ep.ip} jump ${MARK_FOR_MASQUERADE}`];
  if (affinitySet !== null) rules.push(`update @${affinitySet} { ${ipX} saddr }`);
  rules.push(`meta l4proto ${proto} dnat to ${dnatTarget(ep)}`);
  return rules;
}

/** Affinity lookups first (an established client keeps its endpoint), then the random choice. */
export function policyChainRules(endpoints: readonly EndpointNames[], ipX: NftFamily, affinity: boolean): string[] {
  const rules: string[] = [];
  if (affinity) for (const ep of endpoints) rules.push(`${ipX} saddr @${ep.affinitySet} goto ${ep.chain}`);
  const entries = endpoints.map((ep, i) => `${i} : goto ${ep.chain}`);
  rules.push(`numgen random mod ${endpoints.length} vmap { ${entries.join(' , ')} }`);
  return rules;
}
