/**
 * Chain names as upstream kube-proxy computes them, so that `iptables-save |
 * grep KUBE-SVC-XPGD46QRK7WJZT7O` keeps working: the first 16 characters of
 * base32 (RFC 4648, upper case) of SHA-256 over the service port name plus
 * the lower-case protocol (plus "ip:port" for endpoint chains).
 */
import { createHash } from 'node:crypto';
import type { Endpoint, ServicePort } from '../proxier/types.ts';
import { endpointString } from '../proxier/types.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** First 16 base32 characters of sha256(text): 80 bits are all that is needed. */
export function hash16(text: string): string {
  const digest = createHash('sha256').update(text).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (let i = 0; out.length < 16; i++) {
    value = ((value << 8) | digest[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

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
  return { svc: `KUBE-SVC-${h}`, svl: `KUBE-SVL-${h}`, ext: `KUBE-EXT-${h}`, fw: `KUBE-FW-${h}` };
}

export function endpointChainName(sp: Pick<ServicePort, 'key' | 'protocol'>, ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return `KUBE-SEP-${hash16(sp.key + sp.protocol.toLowerCase() + endpointString(ep))}`;
}

/** Prefixes of the per-service chains kube-proxy creates and deletes when stale. */
export const SERVICE_CHAIN_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'] as const;

export function isServiceChain(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}
