/**
 * The seam between kube-proxy-ts and the iptables binaries: one instance per
 * IP family (iptables-* or ip6tables-*) and backend (nft or legacy).
 * `restore.ts` implements it over real processes, `fake-iptables.ts` in
 * memory with the kernel's semantics.
 */
import type { IPFamily } from '../proxier/types.ts';

export type IptablesBackend = 'nft' | 'legacy';

export interface RestoreOptions {
  /** --noflush: only chains declared in the input are flushed. */
  readonly noflush: boolean;
  /** --counters: keep packet/byte counters given in the input. */
  readonly counters: boolean;
}

export interface SaveOptions {
  /** -c: print the packet and byte counters of every rule. */
  readonly counters?: boolean;
}

export interface Iptables {
  readonly family: IPFamily;
  /** Apply iptables-restore input. Rejects with RestoreError on failure (nothing of the failing table is applied). */
  restore(text: string, opts: RestoreOptions): Promise<void>;
  /**
   * iptables-save output for the given tables (all tables when omitted); with `counters`, `iptables-save -c`: every
   * rule line starts with its "[packets:bytes]".
   */
  save(tables?: readonly string[], opts?: SaveOptions): Promise<string>;
}

/** A failed iptables-restore, with the offending input line when it can be identified. */
export class RestoreError extends Error {
  readonly exitCode: number;
  readonly stderr: string;
  /** 1-based line of the input that failed, or null. */
  readonly line: number | null;
  /** The failing line and its neighbours, for logs. */
  readonly context: string;

  constructor(opts: { message: string; exitCode: number; stderr: string; line: number | null; context: string }) {
    super(opts.message);
    this.name = 'RestoreError';
    this.exitCode = opts.exitCode;
    this.stderr = opts.stderr;
    this.line = opts.line;
    this.context = opts.context;
  }
}

/** Lines [line-radius, line+radius] of text (1-based), each prefixed with its number, for error messages. */
export function extractLines(text: string, line: number, radius = 3): string {
  const lines = text.split('\n');
  const from = Math.max(1, line - radius);
  const to = Math.min(lines.length, line + radius);
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${i === line ? '>' : ' '}${String(i).padStart(6)}: ${lines[i - 1]}`);
  return out.join('\n');
}
