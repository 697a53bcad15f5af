/**
 * What /debug/rules shows, per IP family: the rules the mode last applied
 * successfully (what the kernel holds now, built only when asked, from the
 * state the mode keeps anyway) and the last input the kernel's tool refused,
 * kept whole with its error until a later refusal replaces it. One record
 * per mode, whatever its syntax (iptables-restore input, an nft script).
 */
import type { IPFamily } from './types.ts';

export type RulesSyntax = 'iptables-restore' | 'nft';

export interface AppliedRules {
  /** Clock time (ms) of the sync. */
  readonly at: number;
  readonly full: boolean;
  /** Input sent to the kernel by that sync. */
  readonly bytes: number;
  /** Every rule the mode owns now, as input of its tool; built on each call. */
  text(): string;
}

export interface RefusedRules {
  readonly at: number;
  readonly full: boolean;
  /** The tool's error. */
  readonly error: string;
  /** The refused input (empty when the mode did not keep it). */
  readonly input: string;
  /** The 1-based line of the input the tool named, or null. */
  readonly line: number | null;
}

export interface FamilyRules {
  readonly family: IPFamily;
  readonly syntax: RulesSyntax;
  readonly applied: AppliedRules | null;
  readonly refused: RefusedRules | null;
}

export class RulesRecord {
  private readonly syntax: RulesSyntax;
  private readonly families: readonly IPFamily[];
  private readonly appliedBy = new Map<IPFamily, AppliedRules>();
  private readonly refusedBy = new Map<IPFamily, RefusedRules>();

  constructor(syntax: RulesSyntax, families: readonly IPFamily[]) {
    this.syntax = syntax;
    this.families = families;
  }

  applied(family: IPFamily, rules: AppliedRules): void {
    this.appliedBy.set(family, rules);
  }

  /** A sync whose input the kernel refused (an ApplyError has these fields). */
  refused(
    family: IPFamily,
    at: number,
    err: { readonly full: boolean; readonly message: string; readonly input: string | null; readonly line: number | null },
  ): void {
    this.refusedBy.set(family, { at, full: err.full, error: err.message, input: err.input ?? '', line: err.line });
  }

  list(): FamilyRules[] {
    return this.families.map((family) => ({
      family,
      syntax: this.syntax,
      applied: this.appliedBy.get(family) ?? null,
      refused: this.refusedBy.get(family) ?? null,
    }));
  }
}
