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

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * First 16 base32 characters of sha256(text): 80 bits are all that is needed.
 * crypto.hash is the one-shot form (a third of createHash's cost: no Hash
 * object per call); the 10 bytes are read as two 40-bit numbers, 8
 * characters each.
 */
export function hash16(text: string): string {
  const d = hash('sha256', text, 'buffer');
  return base32of40(d[0]!, d[1]!, d[2]!, d[3]!, d[4]!) + base32of40(d[5]!, d[6]!, d[7]!, d[8]!, d[9]!);
}

function base32of40(a: number, b: number, c: number, d: number, e: number): string {
  const hi = (a << 12) | (b << 4) | (c >>> 4); // the first 20 bits
  const lo = ((c & 15) << 16) | (d << 8) | e; // the last 20 bits
  return (
    BASE32[hi >>> 15]! +
    BASE32[(hi >>> 10) & 31]! +
    BASE32[(hi >>> 5) & 31]! +
    BASE32[hi & 31]! +
    BASE32[lo >>> 15]! +
    BASE32[(lo >>> 10) & 31]! +
    BASE32[(lo >>> 5) & 31]! +
    BASE32[lo & 31]!
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
