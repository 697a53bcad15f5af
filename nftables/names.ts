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
 *
 * Unlike upstream, a character nft cannot take in a name (anything but
 * letters, digits, "/", "-", "_" and ".": none in a name the API server
 * accepts, but --objects files may hold them) becomes "_" in the readable
 * part; the hash is still over the name as it is, so names stay distinct.
 * Upstream would write it as it is and every transaction would fail.
 */
import { serviceKey } from '../proxier/service-ports.ts';
import { sha256Base32 } from '../proxier/sha256-base32.ts';
import type { Endpoint, ServicePort } from '../proxier/types.ts';

/** knftables.NameLengthMax (256) minus the longest prefix (16). */
export const CHAIN_NAME_BASE_MAX = 240;

export const SERVICE_PREFIX = 'service-';
export const LOCAL_PREFIX = 'local-';
export const EXTERNAL_PREFIX = 'external-';
export const FIREWALL_PREFIX = 'firewall-';
export const ENDPOINT_PREFIX = 'endpoint-';
export const AFFINITY_PREFIX = 'affinity-';

/** The first 8 base32 characters of sha256(text) (40 bits), as upstream's hashAndTruncate. */
const hash8 = (text: string): string => sha256Base32(text, 8);

/** What nft takes in an unquoted name; every other character (a code point) becomes "_". */
const nameText = (name: string): string => name.replace(/[^A-Za-z0-9/_.-]/gu, '_');

/** Upstream hashAndTruncate: "HASH-name", cut to 237 characters plus "..." when longer than 240. */
export function hashAndTruncate(name: string): string {
  const full = `${hash8(name)}-${nameText(name)}`;
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

const PREFIXED = /^(?:service|local|external|firewall|endpoint|affinity)-[A-Z2-7]{8}-(.+)$/;

/** "ns/svc:port/PROTO" from a per-service chain or affinity set name; null when cut short or not one. */
export function serviceOfName(name: string): string | null {
  const readable = PREFIXED.exec(name)?.[1];
  if (!readable || readable.endsWith('...')) return null;
  const parts = readable.split('__')[0]!.split('/');
  if (parts.length !== 4) return null;
  const [ns, svc, proto, port] = parts as [string, string, string, string];
  return `${serviceKey(ns, svc, port)}/${proto.toUpperCase()}`;
}
