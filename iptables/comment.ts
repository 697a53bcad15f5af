/**
 * `-m comment --comment TEXT` for text that may come from a cluster object
 * (a Service's namespace, name and port name end up in almost every rule).
 *
 * The API server only admits DNS labels and IANA service names, so upstream
 * writes that text into the restore input as it is. Objects from `--objects`
 * or from an API server that does not validate may hold anything, and one
 * unescaped `"` or blank makes iptables-restore refuse the whole input, so
 * every service on the node stops being updated. Here the text is written the
 * way iptables-save prints it back (xtables_save_string): quoted when it holds
 * blanks or quotes, with `"` and `\` escaped inside the quotes; text that needs
 * neither stays unquoted, so valid names give byte for byte upstream's input.
 * (Control characters cannot be carried at all; proxier/service-ports.ts skips
 * objects whose names hold them.)
 *
 * The kernel keeps at most 255 bytes of a comment (XT_MAX_COMMENT_LEN 256
 * with its NUL); iptables 1.8 cuts longer ones silently, older releases refuse
 * them. So the text is cut here, in bytes of UTF-8, at a character boundary,
 * and the differ compares comments in this same kept form (kernelComment), so a
 * long name converges instead of differing forever.
 */
import { quoteWord } from './rule-words.ts';

/** Bytes of comment text the kernel keeps (xt_comment's 256-byte buffer minus the NUL). */
export const MAX_COMMENT_BYTES = 255;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The comment text as the kernel keeps it: well-formed UTF-8 (a lone UTF-16
 * surrogate becomes U+FFFD, as Node's encoder writes it anyway), at most 255
 * bytes, never ending in part of a character. Idempotent.
 */
export function kernelComment(text: string): string {
  const wellFormed = text.isWellFormed() ? text : text.toWellFormed();
  // Fast path: 255 UTF-16 units are at most 765 bytes, 85 units at most 255.
  if (wellFormed.length <= 85) return wellFormed;
  const bytes = encoder.encode(wellFormed);
  if (bytes.length <= MAX_COMMENT_BYTES) return wellFormed;
  let end = MAX_COMMENT_BYTES;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/** The comment match for a rule spec: `-m comment --comment WORD`. */
export function commentMatch(text: string): string {
  return `-m comment --comment ${quoteWord(kernelComment(text))}`;
}
