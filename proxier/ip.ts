/**
 * IP and CIDR parsing as upstream kube-proxy reads API objects: lenient about
 * legacy IPv4 forms with leading zeros (read as decimal, as Go's
 * netutils.ParseIPSloppy does) and stray whitespace, strict about everything
 * else. Addresses are returned in canonical text form.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { IPFamily } from './types.ts';

export interface ParsedIP {
  readonly family: IPFamily;
  /** Canonical text: dotted decimal, or RFC 5952 compressed lower-case IPv6. */
  readonly text: string;
  /** 4 or 16 bytes. */
  readonly bytes: Uint8Array;
}

export interface ParsedCIDR {
  readonly family: IPFamily;
  /** Network address with host bits cleared. */
  readonly network: ParsedIP;
  readonly prefix: number;
  /** "a.b.c.d/n" in canonical form (host bits cleared). */
  readonly text: string;
}

const v4Sloppy = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses an IP address; returns null when it is not one. */
export function parseIP(input: string): ParsedIP | null {
  const s = input.trim();
  const m = v4Sloppy.exec(s);
  if (m) {
    const bytes = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const n = Number.parseInt(m[i + 1]!, 10);
      if (n > 255) return null;
      bytes[i] = n;
    }
    return { family: 'IPv4', text: bytes.join('.'), bytes };
  }
  if (s.includes(':') && isIPv6(s)) {
    const bytes = ipv6Bytes(s);
    if (!bytes) return null;
    // An IPv4-mapped IPv6 address is treated as IPv4 by Go's net.IP.To4.
    if (isV4Mapped(bytes)) {
      const v4 = bytes.slice(12);
      return { family: 'IPv4', text: v4.join('.'), bytes: v4 };
    }
    return { family: 'IPv6', text: formatIPv6(bytes), bytes };
  }
  return null;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const CANONICAL_IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/**
 * parseIP's family and text, without the bytes: an address already in
 * canonical dotted-quad form is its own text (no parse, no copy; 50,000
 * endpoint addresses at 10,000 services).
 */
export function parseIPText(input: string): { readonly family: IPFamily; readonly text: string } | null {
  return CANONICAL_IPV4.test(input) ? { family: 'IPv4', text: input } : parseIP(input);
}

/** Parses "addr/prefix"; returns null when malformed. Host bits are cleared. */
export function parseCIDR(input: string): ParsedCIDR | null {
  const s = input.trim();
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIP(s.slice(0, slash));
  const prefixText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return null;
  let prefix = Number.parseInt(prefixText, 10);
  const bits = ip.bytes.length * 8;
  // "::ffff:1.2.3.0/120" style: mapped addresses carry a 96-bit prefix offset.
  if (ip.family === 'IPv4' && s.slice(0, slash).includes(':')) prefix -= 96;
  if (prefix < 0 || prefix > bits) return null;
  const net = maskBytes(ip.bytes, prefix);
  const network: ParsedIP =
    ip.family === 'IPv4' ? { family: 'IPv4', text: net.join('.'), bytes: net } : { family: 'IPv6', text: formatIPv6(net), bytes: net };
  return { family: ip.family, network, prefix, text: `${network.text}/${prefix}` };
}

export function ipFamilyOf(input: string): IPFamily | null {
  return parseIP(input)?.family ?? null;
}

/** Canonical text of an IP, or null. */
export function normalizeIP(input: string): string | null {
  return parseIP(input)?.text ?? null;
}

export function cidrContains(cidr: ParsedCIDR, ip: ParsedIP): boolean {
  if (cidr.family !== ip.family) return false;
  const masked = maskBytes(ip.bytes, cidr.prefix);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== cidr.network.bytes[i]) return false;
  return true;
}

/** Whether `ip` (text) lies in `cidr` (text); false if either does not parse. */
export function cidrContainsText(cidr: string, ip: string): boolean {
  const c = parseCIDR(cidr);
  const a = parseIP(ip);
  return c !== null && a !== null && cidrContains(c, a);
}

/** 0.0.0.0 or :: (Go's IsUnspecified). */
export function isUnspecified(ip: ParsedIP): boolean {
  return ip.bytes.every((b) => b === 0);
}

export function isLoopback(ip: ParsedIP): boolean {
  if (ip.family === 'IPv4') return ip.bytes[0] === 127;
  return ip.text === '::1';
}

/** Accepts an IP or a CIDR for matching (`-s 1.2.3.4` and `-s 1.2.3.0/24`). */
export function parseIPOrCIDR(input: string): ParsedCIDR | null {
  if (input.includes('/')) return parseCIDR(input);
  const ip = parseIP(input);
  if (!ip) return null;
  const prefix = ip.bytes.length * 8;
  return { family: ip.family, network: ip, prefix, text: `${ip.text}/${prefix}` };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bitsHere === 0 ? 0 : bytes[i]! & ((0xff << (8 - bitsHere)) & 0xff);
  }
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function ipv6Bytes(s: string): Uint8Array | null {
  let text = s.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) return null;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const maybeV4 = text.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    if (!isIPv4(maybeV4)) return null;
    tail = maybeV4.split('.').map((x) => Number.parseInt(x, 10));
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - rest.length).fill('0'), ...rest] : head;
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  groups.forEach((g: string, i: number) => {
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function formatIPv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The closed interval of addresses an address, a prefix or an "a-b" range covers (as nft's interval sets hold them). */
export interface AddressInterval {
  readonly family: IPFamily;
  readonly lo: bigint;
  readonly hi: bigint;
}

const bitsOf = (family: IPFamily): number => (family === 'IPv4' ? 32 : 128);
const bigOf = (bytes: Uint8Array): bigint => bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);

function addressText(n: bigint, family: IPFamily): string {
  const bytes = new Uint8Array(bitsOf(family) / 8);
  for (let i = bytes.length - 1; i >= 0; i--, n >>= 8n) bytes[i] = Number(n & 0xffn);
  return family === 'IPv4' ? bytes.join('.') : formatIPv6(bytes);
}

/** An address, a prefix or an "a-b" range (nft's JSON `range`) as an interval; null when the text is none of them. */
export function addressInterval(text: string): AddressInterval | null {
  const dash = text.indexOf('-');
  if (dash > 0) {
    const a = parseIP(text.slice(0, dash));
    const b = parseIP(text.slice(dash + 1));
    if (!a || !b || a.family !== b.family) return null;
    const lo = bigOf(a.bytes);
    const hi = bigOf(b.bytes);
    return lo <= hi ? { family: a.family, lo, hi } : null;
  }
  const c = parseIPOrCIDR(text);
  if (!c) return null;
  const lo = bigOf(c.network.bytes);
  return { family: c.family, lo, hi: lo + (1n << BigInt(bitsOf(c.family) - c.prefix)) - 1n };
}

export function intervalContains(i: AddressInterval, ip: ParsedIP): boolean {
  if (i.family !== ip.family) return false;
  const n = bigOf(ip.bytes);
  return i.lo <= n && n <= i.hi;
}

/**
 * Intervals of one family merged where they overlap or touch, in address order: what the kernel keeps of an
 * anonymous interval set (`{ 10.96.0.0/16, 10.97.0.0/16 }` is listed as `{ 10.96.0.0/15 }`).
 */
export function mergeIntervals(list: readonly AddressInterval[]): AddressInterval[] {
  const sorted = [...list].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: AddressInterval[] = [];
  for (const i of sorted) {
    const last = out.at(-1);
    if (last && i.lo <= last.hi + 1n) out[out.length - 1] = { family: last.family, lo: last.lo, hi: i.hi > last.hi ? i.hi : last.hi };
    else out.push(i);
  }
  return out;
}

/** An interval as nft prints one: an address, a prefix when it is exactly one, else "a-b". */
export function formatInterval(i: AddressInterval): string {
  if (i.lo === i.hi) return addressText(i.lo, i.family);
  const size = i.hi - i.lo + 1n;
  if ((size & (size - 1n)) === 0n && i.lo % size === 0n) {
    const hostBits = size.toString(2).length - 1;
    return `${addressText(i.lo, i.family)}/${bitsOf(i.family) - hostBits}`;
  }
  return `${addressText(i.lo, i.family)}-${addressText(i.hi, i.family)}`;
}
