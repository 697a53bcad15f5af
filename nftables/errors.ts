/**
 * nft failures, classified once: nft prints English whatever the locale, and
 * the first "Error:" line says what the kernel (or the parser) refused, with
 * the input line it refers to (`/dev/stdin:LINE:COL-COL: Error: ...`). The
 * fake nft throws the same error class, so callers handle both alike.
 */

export type NftErrorKind = 'not-found' | 'exists' | 'busy' | 'unsupported' | 'syntax' | 'other';

export class NftError extends Error {
  readonly kind: NftErrorKind;
  /** 1-based line of the input the error refers to, when nft said. */
  readonly line: number | null;
  /** That input line. */
  readonly lineText: string | null;
  readonly stderr: string;
  readonly exitCode: number;

  constructor(o: { what: string; kind: NftErrorKind; line: number | null; lineText: string | null; stderr: string; exitCode: number }) {
    const detail = firstError(o.stderr) ?? (o.stderr.trim() || `exit code ${o.exitCode}`);
    const where = o.line === null ? '' : ` (input line ${o.line}${o.lineText ? `: ${o.lineText}` : ''})`;
    super(`${o.what} failed: ${detail}${where}`);
    this.name = 'NftError';
    this.kind = o.kind;
    this.line = o.line;
    this.lineText = o.lineText;
    this.stderr = o.stderr;
    this.exitCode = o.exitCode;
  }
}

function firstError(stderr: string): string | null {
  const line = stderr.split('\n').find((l) => /Error:/.test(l));
  return line ? line.replace(/^.*?Error:\s*/, '').trim() : null;
}

export function classifyError(stderr: string): NftErrorKind {
  const first = firstError(stderr) ?? stderr;
  if (/No such file or directory/.test(first)) return 'not-found';
  if (/File exists/.test(first)) return 'exists';
  if (/Device or resource busy/.test(first)) return 'busy';
  if (/Operation not supported/.test(first)) return 'unsupported';
  if (/syntax error|unexpected|Could not parse|conflicting/i.test(first)) return 'syntax';
  return 'other';
}

/** Builds the error of a failed `nft` run from its stderr and the input it was given. */
export function nftFailure(what: string, r: { code: number; stderr: string }, input: string | null): NftError {
  const m = /^(?:\/dev\/stdin|-|[^:\s]+):(\d+):\d+(?:-\d+)?: Error:/m.exec(r.stderr);
  const line = m ? Number(m[1]) : null;
  let lineText: string | null = null;
  if (line !== null && input !== null) lineText = input.split('\n')[line - 1]?.trim() ?? null;
  return new NftError({ what, kind: classifyError(r.stderr), line, lineText, stderr: r.stderr, exitCode: r.code });
}

/**
 * A transaction could not be handed to the `nft -i` session: its file could not be written (nft-session.ts). Nothing
 * reached nft; the transaction can still be applied another way (`nft -f -`, nft.ts).
 */
export class NftStagingError extends Error {
  override readonly name = 'NftStagingError';
}
