/**
 * Chain names as upstream kube-proxy computes them, so that `iptables-save |
 * grep KUBE-SVC-XPGD46QRK7WJZT7O` keeps working: the first 16 characters of
 * base32 (RFC 4648, upper case) of SHA-256 over the service port name plus
 * the lower-case protocol (plus "ip:port" for endpoint chains).
 */
import { hash } from 'node:crypto';
import type { Endpoint, ServicePort } from '../proxier/types.ts';
import { endpointString } from '../proxier/types.ts';
import { EXT_PREFIX, FW_PREFIX, SEP_PREFIX, SVC_PREFIX, SVL_PREFIX } from './chains.ts';

const BASE32 = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (c) => c.charCodeAt(0));
/** base64url character code -> its 6 bits. */
const BASE64 = new Uint8Array(128);
Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c, i) => (BASE64[c.charCodeAt(0)] = i));

/**
 * First 16 base32 characters of sha256(text): 80 bits are all that is needed.
 * crypto.hash is the one-shot form (no Hash object per call); its digest is
 * taken as a base64url string rather than a Buffer (a Buffer per call costs
 * an ArrayBuffer the collector must track: 70,000 of them at 10,000 services
 * made hashing ~6x slower), and its first 14 characters (84 bits) are
 * re-cut into 5-bit groups and built as one flat string.
 */
export function hash16(text: string): string {
  const s = hash('sha256', text, 'base64url');
  const v = (i: number): number => BASE64[s.charCodeAt(i)]!;
  const a = (v(0) << 18) | (v(1) << 12) | (v(2) << 6) | v(3); // bits 0-23
  const b = (v(4) << 18) | (v(5) << 12) | (v(6) << 6) | v(7); // bits 24-47
  const c = (v(8) << 18) | (v(9) << 12) | (v(10) << 6) | v(11); // bits 48-71
  const d = (v(12) << 6) | v(13); // bits 72-83
  const C = BASE32;
  return String.fromCharCode(
    C[a >>> 19]!,
    C[(a >>> 14) & 31]!,
    C[(a >>> 9) & 31]!,
    C[(a >>> 4) & 31]!,
    C[((a & 15) << 1) | (b >>> 23)]!,
    C[(b >>> 18) & 31]!,
    C[(b >>> 13) & 31]!,
    C[(b >>> 8) & 31]!,
    C[(b >>> 3) & 31]!,
    C[((b & 7) << 2) | (c >>> 22)]!,
    C[(c >>> 17) & 31]!,
    C[(c >>> 12) & 31]!,
    C[(c >>> 7) & 31]!,
    C[(c >>> 2) & 31]!,
    C[((c & 3) << 3) | (d >>> 9)]!,
    C[(d >>> 4) & 31]!,
  );
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
