/**
 * Chain names as upstream kube-proxy computes them, so that `iptables-save |
 * grep KUBE-SVC-XPGD46QRK7WJZT7O` keeps working: the first 16 characters of
 * base32 (RFC 4648, upper case) of SHA-256 over the service port name plus
 * the lower-case protocol (plus "ip:port" for endpoint chains).
 */
import { createHash } from 'node:crypto';
import type { Endpoint, ServicePort } from '../proxier/types.ts';
import { endpointString } from '../proxier/types.ts';
import { EXT_PREFIX, FW_PREFIX, SEP_PREFIX, SVC_PREFIX, SVL_PREFIX } from './chains.ts';

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
  return { svc: SVC_PREFIX + h, svl: SVL_PREFIX + h, ext: EXT_PREFIX + h, fw: FW_PREFIX + h };
}

export function endpointChainName(sp: Pick<ServicePort, 'key' | 'protocol'>, ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return SEP_PREFIX + hash16(sp.key + sp.protocol.toLowerCase() + endpointString(ep));
}
