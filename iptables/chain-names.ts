/**
 * Chain names as upstream kube-proxy computes them, so that `iptables-save |
 * grep KUBE-SVC-XPGD46QRK7WJZT7O` keeps working: the first 16 characters of
 * base32 (RFC 4648, upper case) of SHA-256 over the service port name plus
 * the lower-case protocol (plus "ip:port" for endpoint chains).
 */
import type { Endpoint, ServicePort } from '../proxier/types.ts';
import { endpointString } from '../proxier/types.ts';
import { sha256Base32 } from '../proxier/sha256-base32.ts';
import { EXT_PREFIX, FW_PREFIX, SEP_PREFIX, SVC_PREFIX, SVL_PREFIX } from './chains.ts';

/** First 16 base32 characters of sha256(text): 80 bits are all that is needed. */
export const hash16 = (text: string): string => sha256Base32(text, 16);

export interface ServiceChainNames {
  /** KUBE-SVC-*: endpoints for "Cluster" traffic policy. */
  readonly svc: string;
  /** KUBE-SVL-*: endpoints for "Local" traffic policy. */
  readonly svl: string;
  /** KUBE-EXT-*: entry for external destinations (NodePort, externalIPs, LB). */
  readonly ext: string;
  /** KUBE-FW-*: loadBalancerSourceRanges filter. */
  readonly fw: string;
}

export function serviceChainNames(sp: Pick<ServicePort, 'key' | 'protocol'>): ServiceChainNames {
  const h = hash16(sp.key + sp.protocol.toLowerCase());
  return { svc: SVC_PREFIX + h, svl: SVL_PREFIX + h, ext: EXT_PREFIX + h, fw: FW_PREFIX + h };
}

export function endpointChainName(sp: Pick<ServicePort, 'key' | 'protocol'>, ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return SEP_PREFIX + hash16(sp.key + sp.protocol.toLowerCase() + endpointString(ep));
}

/**
 * endpointChainName for one service port's render: each endpoint's name is
 * hashed once, however often the render asks (its policy chain jumps and its
 * own chain both name it).
 */
export function endpointChainNamer(sp: Pick<ServicePort, 'key' | 'protocol'>): (ep: Pick<Endpoint, 'ip' | 'port'>) => string {
  const prefix = sp.key + sp.protocol.toLowerCase();
  const names = new Map<string, string>();
  return (ep) => {
    const text = endpointString(ep);
    let name = names.get(text);
    if (name === undefined) names.set(text, (name = SEP_PREFIX + hash16(prefix + text)));
    return name;
  };
}
