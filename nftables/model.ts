/**
 * The desired-state model of one kube-proxy nftables table: chains with
 * ordered rules, sets and maps with their declarations and elements. The
 * renderer produces it, the JSON parser reads the kernel's table into it, the
 * transaction writer turns differences between two of them into `nft -f`
 * text, the fake nft and the tracer run on it. Plain readonly data.
 *
 * Rules are nft statement text ("ip daddr 172.30.0.41 jump mark-for-masquerade");
 * rule-text.ts reads that text into a structured form (rule-ast.ts) for comparison and
 * tracing. Element keys and values are their nft text with parts joined by
 * " . " ("172.30.0.41 . tcp . 80", "goto service-...").
 */
import type { IPFamily } from '../proxier/types.ts';

export type NftFamily = 'ip' | 'ip6';
export type ChainType = 'filter' | 'nat';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

export const TABLE_NAME = 'kube-proxy';
export const TABLE_COMMENT = 'rules for kube-proxy';

export interface BaseChainSpec {
  readonly type: ChainType;
  readonly hook: Hook;
  /** Numeric, as knftables writes it (dstnat = -100, filter = 0, srcnat = 100). */
  readonly priority: number;
  /**
   * What a packet that runs off the chain's end gets. We never write one (accept); set only when a listing shows
   * another (`policy drop`, from outside), so a render and a listing of it compare equal.
   */
  readonly policy?: 'drop';
}

export interface NftChain {
  readonly name: string;
  /** Set for chains attached to a netfilter hook. */
  readonly base: BaseChainSpec | null;
  readonly comment: string | null;
  readonly rules: readonly string[];
}

export interface NftElement {
  /** Key parts joined by " . ", e.g. "172.30.0.41 . tcp . 80". */
  readonly key: string;
  /** Map value ("goto chain", "drop"); null in a set. */
  readonly value: string | null;
  readonly comment: string | null;
}

export interface NftSet {
  readonly name: string;
  readonly kind: 'set' | 'map';
  /** Declared type as written, e.g. "ipv4_addr . inet_proto . inet_service : verdict". */
  readonly type: string;
  readonly flags: readonly string[];
  /** Default element timeout in seconds, or null. */
  readonly timeout: number | null;
  readonly comment: string | null;
  /** Null for sets the packet path fills (affinity sets): their contents are not desired state. */
  readonly elements: readonly NftElement[] | null;
}

export interface NftTable {
  readonly family: NftFamily;
  readonly name: string;
  readonly comment: string | null;
  readonly chains: readonly NftChain[];
  readonly sets: readonly NftSet[];
  /** Names of the table's named counters (--traffic-counters); absent or empty when it has none. */
  readonly counters?: readonly string[];
}

export function nftFamily(family: IPFamily): NftFamily {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

export function ipFamilyOfNft(family: NftFamily): IPFamily {
  return family === 'ip' ? 'IPv4' : 'IPv6';
}

/** "ipv4_addr" / "ipv6_addr": the address type of a family's sets. */
export function addrType(family: NftFamily): string {
  return family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
}

/** Element text inside `{ }`, as knftables writes it: key [comment "c"] [: value]. */
export function elementText(e: NftElement): string {
  const comment = e.comment === null ? '' : ` comment ${quote(e.comment)}`;
  return e.value === null ? `${e.key}${comment}` : `${e.key}${comment} : ${e.value}`;
}

/** The longest comment nft takes, in bytes (knftables.CommentLengthMax); a longer one is refused: "comment too long". */
export const COMMENT_MAX_BYTES = 128;

/**
 * A comment made of object names, as nft takes it: without double quotes (an nft string cannot escape them),
 * well-formed, and cut to 128 bytes at a character boundary. An element comment is "namespace/name:port", up to 143
 * characters for names the API server accepts; upstream cuts them to 128 bytes from v1.37 (#139516; earlier, such a
 * service failed every sync).
 */
export function nftComment(text: string): string {
  // Control characters (a tab, say) become spaces: one line of nft input, read back the same by every reader. A lone
  // surrogate reaches nft as U+FFFD (UTF-8 has no form for it) and is listed so.
  const clean = text
    .replaceAll('"', '')
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .toWellFormed();
  if (Buffer.byteLength(clean) <= COMMENT_MAX_BYTES) return clean;
  let out = '';
  let bytes = 0;
  for (const ch of clean) {
    bytes += Buffer.byteLength(ch);
    if (bytes > COMMENT_MAX_BYTES) break;
    out += ch;
  }
  return out;
}

/** A double-quoted nft string; the names and comments kube-proxy writes never hold quotes (nftComment). */
export function quote(text: string): string {
  if (text.includes('"')) throw new Error(`nft strings cannot contain double quotes: ${JSON.stringify(text)}`);
  return `"${text}"`;
}

export function findChain(table: NftTable, name: string): NftChain | undefined {
  return table.chains.find((c) => c.name === name);
}

export function findSet(table: NftTable, name: string): NftSet | undefined {
  return table.sets.find((s) => s.name === name);
}
