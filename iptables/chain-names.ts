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
  const text = sp.key + sp.protocol.toLowerCase();
  // Each name hashed with its prefix: one flat string (PREFIX + hash would be kept as a pair of pieces).
  const svc = sha256Base32(text, 16, SVC_PREFIX);
  const h = svc.slice(SVC_PREFIX.length);
  return { svc, svl: flatConcat(SVL_PREFIX, h), ext: flatConcat(EXT_PREFIX, h), fw: flatConcat(FW_PREFIX, h) };
}

/** a + b as one flat string (join copies; + keeps both pieces and a node over them). */
const flatConcat = (a: string, b: string): string => [a, b].join('');

export function endpointChainName(sp: Pick<ServicePort, 'key' | 'protocol'>, ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return sha256Base32(sp.key + sp.protocol.toLowerCase() + endpointString(ep), 16, SEP_PREFIX);
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
    if (name === undefined) names.set(text, (name = sha256Base32(prefix + text, 16, SEP_PREFIX)));
    return name;
  };
}
