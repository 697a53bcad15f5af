/**
 * Names of the per-service-port objects, as upstream's nftables proxier makes
 * them (pkg/proxy/nftables/proxier.go: hashAndTruncate,
 * servicePortChainNameBase, servicePortEndpointChainNameBase), so that
 * `nft list table ip kube-proxy` reads the same under kube-proxy-ts:
 *
 *   service-ULMVA6XW-ns1/svc1/tcp/p80
 *   endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
 *
 * The base is the first 8 characters of base32 (RFC 4648) of SHA-256 over the
 * readable name, a dash, then the readable name, cut to 240 characters. Every
 * such name contains "/", which no fixed chain name does: that is how stale
 * per-service chains are told apart.
 */
import { hash } from 'node:crypto';
import type { Endpoint, ServicePort } from '../proxier/types.ts';

const BASE32 = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (c) => c.charCodeAt(0));

/** knftables.NameLengthMax (256) minus the longest prefix (16). */
export const CHAIN_NAME_BASE_MAX = 240;

export const SERVICE_PREFIX = 'service-';
export const LOCAL_PREFIX = 'local-';
export const EXTERNAL_PREFIX = 'external-';
export const FIREWALL_PREFIX = 'firewall-';
export const ENDPOINT_PREFIX = 'endpoint-';
export const AFFINITY_PREFIX = 'affinity-';

/** base64url character code -> its 6 bits. */
const BASE64 = new Uint8Array(128);
Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c, i) => (BASE64[c.charCodeAt(0)] = i));

/**
 * The first 8 base32 characters of sha256(text) (40 bits). One-shot
 * crypto.hash as a base64url string, its first 7 characters (42 bits)
 * re-cut into 5-bit groups, as iptables/chain-names.ts does: a Hash object
 * and a digest Buffer per name (60,000 at 10,000 service ports) were ~100 MB
 * of garbage per full render, much of it outliving young collections.
 */
function hash8(text: string): string {
  const s = hash('sha256', text, 'base64url');
  const v = (i: number): number => BASE64[s.charCodeAt(i)]!;
  const a = (v(0) << 18) | (v(1) << 12) | (v(2) << 6) | v(3); // bits 0-23
  const b = (v(4) << 12) | (v(5) << 6) | v(6); // bits 24-41
  return String.fromCharCode(
    BASE32[a >>> 19]!,
    BASE32[(a >>> 14) & 31]!,
    BASE32[(a >>> 9) & 31]!,
    BASE32[(a >>> 4) & 31]!,
    BASE32[((a & 15) << 1) | (b >>> 17)]!,
    BASE32[(b >>> 12) & 31]!,
    BASE32[(b >>> 7) & 31]!,
    BASE32[(b >>> 2) & 31]!,
  );
}

/** Upstream hashAndTruncate: "HASH-name", cut to 237 characters plus "..." when longer than 240. */
export function hashAndTruncate(name: string): string {
  const full = `${hash8(name)}-${name}`;
  return full.length > CHAIN_NAME_BASE_MAX ? `${full.slice(0, CHAIN_NAME_BASE_MAX - 3)}...` : full;
}

type PortName = Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>;

/** "ns/svc/proto/port", the readable part of every chain of one service port. */
function readable(sp: PortName): string {
  return `${sp.namespace}/${sp.name}/${sp.protocol.toLowerCase()}/${sp.portName}`;
}

export function servicePortBase(sp: PortName): string {
  return hashAndTruncate(readable(sp));
}

/** Endpoint base: IPv6 colons become dots (chain names cannot hold ':'); no brackets. */
export function endpointBase(sp: PortName, ep: Pick<Endpoint, 'ip' | 'port'>): string {
  return hashAndTruncate(`${readable(sp)}__${ep.ip.replaceAll(':', '.')}/${ep.port}`);
}

export interface ServicePortNames {
  readonly service: string;
  readonly local: string;
  readonly external: string;
  readonly firewall: string;
}

export function servicePortNames(sp: PortName): ServicePortNames {
  const base = servicePortBase(sp);
  return { service: SERVICE_PREFIX + base, local: LOCAL_PREFIX + base, external: EXTERNAL_PREFIX + base, firewall: FIREWALL_PREFIX + base };
}

export interface EndpointNames {
  readonly chain: string;
  readonly affinitySet: string;
}

export function endpointNames(sp: PortName, ep: Pick<Endpoint, 'ip' | 'port'>): EndpointNames {
  const base = endpointBase(sp, ep);
  return { chain: ENDPOINT_PREFIX + base, affinitySet: AFFINITY_PREFIX + base };
}

/** Upstream isServiceChainName: per-service and per-endpoint chains, and only they, contain "/". */
export function isServiceChainName(name: string): boolean {
  return name.includes('/');
}

/** Upstream isAffinitySetName. */
export function isAffinitySetName(name: string): boolean {
  return name.startsWith(AFFINITY_PREFIX);
}
