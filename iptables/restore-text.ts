/**
 * The one writer of iptables-restore input. Every caller (a full or partial
 * sync, the userspace portals, --cleanup and the mode switch, the canary,
 * `kube-proxy-ts render`) describes per table what to declare, edit, fill and
 * delete; the layout is upstream's: the table header, every chain
 * declaration, the edits of built-in chains, the rules, the deletions, COMMIT.
 * Under --noflush, declaring a chain creates it or empties it.
 */
import type { Chain, Ruleset } from './ruleset.ts';

export interface TableSection {
  readonly table: string;
  /** User chains written whole: declared, then their rules appended (-A). */
  readonly chains?: readonly Chain[];
  /** Chains only declared: emptied (they are deleted below, or stay empty). */
  readonly emptied?: readonly string[];
  /** Edits of built-in chains, before the rules: "-I CHAIN 1 rule", "-D CHAIN rule". */
  readonly edits?: readonly string[];
  /** Chains deleted (-X) at the end; they must be emptied first (nothing may jump to them any more). */
  readonly deleted?: readonly string[];
}

/** The lines of one table section; none when there is nothing to write in that table. */
export function sectionLines(s: TableSection): string[] {
  const { chains = [], emptied = [], edits = [], deleted = [] } = s;
  if (!chains.length && !emptied.length && !edits.length && !deleted.length) return [];
  const lines = [`*${s.table}`];
  for (const c of chains) lines.push(`:${c.name} - [0:0]`);
  for (const name of emptied) lines.push(`:${name} - [0:0]`);
  for (const e of edits) lines.push(e);
  for (const c of chains) for (const r of c.rules) lines.push(`-A ${c.name} ${r}`);
  for (const name of deleted) lines.push(`-X ${name}`);
  lines.push('COMMIT');
  return lines;
}

/** iptables-restore input for the sections, in order; "" when none has anything to write. */
export function restoreText(sections: readonly TableSection[]): string {
  const lines = sections.flatMap(sectionLines);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export interface RestoreTextOptions {
  /**
   * What to do with rules in built-in chains:
   * - "skip": leave them out (the modes manage jump rules separately, so that
   *   kube-proxy never owns PREROUTING & co.);
   * - "insert": write them as "-I CHAIN n ..." so that loading the text with
   *   `iptables-restore --noflush` into a fresh namespace yields a working
   *   ruleset in the same order upstream kube-proxy would produce.
   */
  readonly builtins: 'skip' | 'insert';
  /** More edits of built-in chains per table (e.g. missing jump rules as "-I CHAIN 1 ..."). */
  readonly edits?: ReadonlyMap<string, readonly string[]>;
}

/** iptables-restore input for a whole Ruleset: its user chains written whole. */
export function toRestoreText(rs: Ruleset, opts: RestoreTextOptions = { builtins: 'skip' }): string {
  return restoreText(
    rs.tables.map((t) => {
      const inserts =
        opts.builtins === 'insert'
          ? t.chains.filter((c) => c.policy !== null).flatMap((c) => c.rules.map((r, i) => `-I ${c.name} ${i + 1} ${r}`))
          : [];
      return { table: t.name, chains: t.chains.filter((c) => c.policy === null), edits: [...inserts, ...(opts.edits?.get(t.name) ?? [])] };
    }),
  );
}
