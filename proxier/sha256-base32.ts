/**
 * The first characters of base32 (RFC 4648, upper case) of SHA-256 over a
 * text: how upstream names per-service chains in both of its rule-writing
 * modes (iptables: 16 characters, pkg/proxy/iptables portProtoHash /
 * servicePortEndpointChainName; nftables: 8, hashAndTruncate).
 *
 * crypto.hash is the one-shot form (no Hash object per call); its digest is
 * taken as a base64url string rather than a Buffer (a Buffer per call costs
 * an ArrayBuffer the collector must track: at 10,000 services the names made
 * hashing ~6x slower and ~100 MB of garbage per render), and its leading
 * 6-bit groups are re-cut into 5-bit ones and built as one flat string (no
 * concatenation: callers keep these names, and V8 keeps a concatenation as a
 * tree of pieces).
 */
import { hash } from 'node:crypto';

const BASE32 = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (c) => c.charCodeAt(0));
/** base64url character code -> its 6 bits. */
const BASE64 = new Uint8Array(128);
Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c, i) => (BASE64[c.charCodeAt(0)] = i));

/** Character codes of the name being built (reused: one call at a time). */
const out: number[] = [];

/** `prefix` then the first `chars` base32 characters of sha256(text) (chars ≤ 51), as one flat string. */
export function sha256Base32(text: string, chars: number, prefix = ''): string {
  const s = hash('sha256', text, 'base64url');
  const p = prefix.length;
  out.length = p + chars;
  for (let k = 0; k < p; k++) out[k] = prefix.charCodeAt(k);
  let acc = 0;
  let bits = 0;
  for (let i = 0, j = p; j < p + chars; i++) {
    // At most 4 bits are left over from the last group: 10 bits after this one.
    acc = ((acc << 6) | BASE64[s.charCodeAt(i)]!) & 0x3ff;
    bits += 6;
    while (bits >= 5 && j < p + chars) {
      bits -= 5;
      out[j++] = BASE32[acc >>> bits]!;
      acc &= (1 << bits) - 1;
    }
  }
  return String.fromCharCode.apply(null, out);
}
