/**
 * Endpoint-level rules: the probability ladder and ClientIP affinity rules in
 * a KUBE-SVC/KUBE-SVL chain, and the KUBE-SEP chain of each endpoint
 * (hairpin masquerade + DNAT).
 */
import type { Endpoint, ServicePort } from '../proxier/types.ts';
import { endpointString } from '../proxier/types.ts';
import { endpointChainName } from './chain-names.ts';
import { KUBE_MARK_MASQ } from './chains.ts';
import { commentMatch } from './comment.ts';
import type { Chain } from './ruleset.ts';

/** 1/n with exactly 10 decimals, rounded half-to-even on the exact binary value as Go's %0.10f does. */
export function probability(n: number): string {
  const x = 1 / n;
  const fixed = x.toFixed(10);
  // toFixed rounds exact ties up; Go rounds them to even. A tie shows as "5" then only zeros.
  const exact = x.toFixed(40);
  if (/^\d+\.\d{10}50*$/.test(exact)) {
    const truncated = exact.slice(0, exact.indexOf('.') + 11);
    const lastDigit = Number(truncated.at(-1));
    if (lastDigit % 2 === 0) return truncated;
  }
  return fixed;
}

const probabilityCache: string[] = [];
/** Cached for the common sizes, as upstream does for n <= 1000. */
export function cachedProbability(n: number): string {
  if (n > 1000) return probability(n);
  return (probabilityCache[n] ??= probability(n));
}

export interface EndpointRuleContext {
  /** Leave per-endpoint comments out (upstream's large-cluster mode, > 1000 endpoints). */
  readonly largeClusterMode: boolean;
  /** The KUBE-SEP name of an endpoint of this service port (default endpointChainName; a render passes endpointChainNamer's). */
  readonly sepName?: (ep: Endpoint) => string;
}

/** Rules of a KUBE-SVC-* / KUBE-SVL-* chain jumping to the given endpoints. */
export function serviceToEndpointRules(sp: ServicePort, endpoints: readonly Endpoint[], ctx: EndpointRuleContext): string[] {
  const rules: string[] = [];
  const commentFor = (ep: Endpoint): string => (ctx.largeClusterMode ? '' : `${commentMatch(`${sp.key} -> ${endpointString(ep)}`)} `);
  const sepName = ctx.sepName ?? ((ep: Endpoint) => endpointChainName(sp, ep));
  if (sp.sessionAffinityTimeout > 0) {
    for (const ep of endpoints) {
      const sep = sepName(ep);
      rules.push(`${commentFor(ep)}-m recent --name ${sep} --rcheck --seconds ${sp.sessionAffinityTimeout} --reap -j ${sep}`);
    }
  }
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const stat = i < n - 1 ? `-m statistic --mode random --probability ${cachedProbability(n - i)} ` : '';
    rules.push(`${commentFor(ep)}${stat}-j ${sepName(ep)}`);
  });
  return rules;
}

/** The KUBE-SEP-* chain of one endpoint. */
export function endpointChain(sp: ServicePort, ep: Endpoint, ctx: EndpointRuleContext): Chain {
  const name = ctx.sepName ? ctx.sepName(ep) : endpointChainName(sp, ep);
  const proto = sp.protocol.toLowerCase();
  const comment = ctx.largeClusterMode ? '' : `${commentMatch(sp.key)} `;
  const affinity = sp.sessionAffinityTimeout > 0 ? `-m recent --name ${name} --set ` : '';
  return {
    name,
    policy: null,
    rules: [
      // Traffic that loops back to the pod it came from needs SNAT (hairpin).
      `${comment}-s ${ep.ip} -j ${KUBE_MARK_MASQ}`,
      `${comment}${affinity}-m ${proto} -p ${proto} -j DNAT --to-destination ${endpointString(ep)}`,
    ],
  };
}
