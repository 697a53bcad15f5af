/**
 * The one writer of iptables-restore input. Every caller (a full or partial
 * sync, the userspace portals, --cleanup and the mode switch, the canary,
 * `kube-proxy-ts render`) describes per table what to declare, edit, fill and
 * delete; the layout is upstream's: the table header, every chain
 * declaration, the edits of built-in chains, the rules, the deletions, COMMIT.
 * Under --noflush, declaring a chain creates it or empties it.
 */
import { PackedChain } from './packed-chain.ts';
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
  /** More user chains written whole, after `chains` (declared after them, their rules after theirs), built only when written. */
  readonly streamed?: StreamedChains;
}

/**
 * User chains known by name up front and built one group at a time as their
 * rules are written: `render` declares every per-service chain, then builds
 * each service's chains, writes them and lets them go.
 */
export interface StreamedChains {
  readonly names: () => Iterable<string>;
  readonly chains: () => Iterable<readonly Chain[]>;
}

/** Text is handed to the writer in pieces of about this many characters. */
export const RESTORE_CHUNK_CHARS = 1 << 16;

/** Collects lines and hands them to a writer in chunks, so no caller needs the whole text at once. */
class ChunkedLines {
  // Lines kept apart and joined once per chunk: one flat copy, where appending to a string built a rope of two
  // pieces per line that writing had to flatten.
  private lines: string[] = [];
  private chars = 0;
  private readonly write: (chunk: string) => void;
  private readonly chunkChars: number;
  constructor(write: (chunk: string) => void, chunkChars: number) {
    this.write = write;
    this.chunkChars = chunkChars;
  }
  line(text: string): void {
    this.lines.push(text);
    this.chars += text.length + 1;
    if (this.chars >= this.chunkChars) this.flush();
  }
  flush(): void {
    if (this.lines.length === 0) return;
    this.lines.push('');
    this.write(this.lines.join('\n'));
    this.lines = [];
    this.chars = 0;
  }
}

function writeSection(s: TableSection, out: ChunkedLines): void {
  const { chains = [], emptied = [], edits = [], deleted = [], streamed } = s;
  if (!chains.length && !emptied.length && !edits.length && !deleted.length && !streamed) return;
  out.line(`*${s.table}`);
  for (const c of chains) out.line(`:${c.name} - [0:0]`);
  if (streamed) for (const name of streamed.names()) out.line(`:${name} - [0:0]`);
  for (const name of emptied) out.line(`:${name} - [0:0]`);
  for (const e of edits) out.line(e);
  for (const c of chains) writeRules(c, out);
  if (streamed) for (const group of streamed.chains()) for (const c of group) writeRules(c, out);
  for (const name of deleted) out.line(`-X ${name}`);
  out.line('COMMIT');
}

function writeRules(c: Chain, out: ChunkedLines): void {
  const head = `-A ${c.name} `;
  if (c instanceof PackedChain) {
    // The chain's lines as one piece: its rules are already one text.
    if (c.count > 0) out.line(head + (c.count === 1 ? c.text : c.text.replaceAll('\n', `\n${head}`)));
    return;
  }
  for (const r of c.rules) out.line(head + r);
}

/**
 * iptables-restore input for the sections, in order, handed to `write` in
 * chunks of about `chunkChars` characters (the concatenation is the text
 * restoreText returns; nothing is written when no section has anything).
 */
export function writeRestoreText(sections: readonly TableSection[], write: (chunk: string) => void, chunkChars = RESTORE_CHUNK_CHARS): void {
  const out = new ChunkedLines(write, chunkChars);
  for (const s of sections) writeSection(s, out);
  out.flush();
}

/** iptables-restore input for the sections, in order; "" when none has anything to write. */
/** The length of restoreText(sections), counted without building it (0: an empty input). */
export function restoreTextLength(sections: readonly TableSection[]): number {
  let n = 0;
  for (const { table, chains = [], emptied = [], edits = [], deleted = [] } of sections) {
    if (!chains.length && !emptied.length && !edits.length && !deleted.length) continue;
    n += table.length + 2 + 7; // "*table\n", "COMMIT\n"
    for (const c of chains) n += c.name.length + 10; // ":NAME - [0:0]\n"
    for (const name of emptied) n += name.length + 10;
    for (const e of edits) n += e.length + 1;
    for (const c of chains) {
      const head = c.name.length + 4; // "-A NAME "
      // A packed chain's text is its rules with a "\n" between each two: one per rule in all.
      if (c instanceof PackedChain) n += c.count === 0 ? 0 : c.count * head + c.text.length + 1;
      else for (const r of c.rules) n += head + r.length + 1;
    }
    for (const name of deleted) n += name.length + 4; // "-X NAME\n"
  }
  return n;
}

export function restoreText(sections: readonly TableSection[]): string {
  const parts: string[] = [];
  writeRestoreText(sections, (chunk) => parts.push(chunk));
  return parts.join('');
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
  return restoreText(rulesetSections(rs, opts));
}

/**
 * toRestoreText in chunks (see writeRestoreText), with `streamed` chains of a
 * table written after its own: `render` streams a 17 MB ruleset to stdout
 * this way (iptables/render.ts's StreamedRender).
 */
export function writeRulesetText(
  rs: Ruleset,
  opts: RestoreTextOptions,
  write: (chunk: string) => void,
  streamed?: ReadonlyMap<string, StreamedChains>,
): void {
  writeRestoreText(rulesetSections(rs, opts, streamed), write);
}

function rulesetSections(rs: Ruleset, opts: RestoreTextOptions, streamed?: ReadonlyMap<string, StreamedChains>): TableSection[] {
  return rs.tables.map((t) => {
    const inserts =
      opts.builtins === 'insert' ? t.chains.filter((c) => c.policy !== null).flatMap((c) => c.rules.map((r, i) => `-I ${c.name} ${i + 1} ${r}`)) : [];
    const more = streamed?.get(t.name);
    return {
      table: t.name,
      chains: t.chains.filter((c) => c.policy === null),
      edits: [...inserts, ...(opts.edits?.get(t.name) ?? [])],
      ...(more ? { streamed: more } : {}),
    };
  });
}
