/**
 * An in-memory Iptables with the kernel's restore semantics (fake-tables.ts),
 * for tests that need no root: restore applies table by table, each table at
 * its COMMIT, so a failing input leaves earlier tables committed and nothing
 * of the failing one (as both iptables 1.8.9 backends do); save prints
 * iptables-save format. Rules are stored and printed as written: unlike the
 * kernel, the fake does not normalise them (compare with normalizeRuleSpec).
 *
 * Every restore is logged in `restores`, so tests can assert what was
 * written; `failNext` makes the next restore fail without touching state.
 *
 * Counters: `count()` stands in for traffic (adds packets and bytes to a
 * rule); `save(..., { counters: true })` prints them as `iptables-save -c`
 * does. As in the kernel (checked with both backends), a chain declared or
 * flushed by a restore starts again from zero, with or without --counters;
 * rules of chains the input does not declare keep theirs. Counters are kept
 * per rule text, so two identical rules of one chain share theirs.
 */
import type { IPFamily } from '../proxier/types.ts';
import { applySection, freshTable, TableError, type FakeChain, type FakeTable } from './fake-tables.ts';
import { extractLines, RestoreError, type Iptables, type IptablesBackend, type RestoreOptions, type SaveOptions } from './iptables.ts';
import { ParseError, parseRestore, type RestoreDoc, type RestoreTable } from './parse.ts';
import { BUILTIN_CHAINS, isBuiltinChain, type Ruleset, type Table } from './ruleset.ts';

export interface FakeIptablesOptions {
  readonly family?: IPFamily;
  /** Which backend's differences to model (default nft); see fake-tables.ts. */
  readonly backend?: IptablesBackend;
}

export interface RestoreCall {
  readonly text: string;
  readonly opts: RestoreOptions;
  /** Null when the restore succeeded. */
  readonly error: RestoreError | null;
}

export class FakeIptables implements Iptables {
  readonly family: IPFamily;
  readonly backend: IptablesBackend;
  /** Every restore() call, in order. */
  readonly restores: RestoreCall[] = [];
  /** Tables that exist, in creation order. */
  private readonly tables = new Map<string, FakeTable>();
  /** table -> chain -> rule text -> [packets, bytes]. */
  private readonly counters = new Map<string, Map<string, Map<string, [number, number]>>>();
  private injected: string | null = null;

  constructor(opts: FakeIptablesOptions = {}) {
    this.family = opts.family ?? 'IPv4';
    this.backend = opts.backend ?? 'nft';
  }

  /** Makes the next restore() fail with this message, applying nothing. */
  failNext(message = 'injected failure'): void {
    this.injected = message;
  }

  private get binary(): string {
    return `${this.family === 'IPv6' ? 'ip6tables' : 'iptables'}-${this.backend}-restore`;
  }

  async restore(text: string, opts: RestoreOptions): Promise<void> {
    const error = this.apply(text, opts);
    this.restores.push({ text, opts, error });
    if (error) throw error;
  }

  private apply(text: string, opts: RestoreOptions): RestoreError | null {
    if (this.injected !== null) {
      const message = this.injected;
      this.injected = null;
      return this.error(text, null, message, 1);
    }
    let doc: RestoreDoc;
    let parseError: ParseError | null = null;
    try {
      doc = parseRestore(text);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      // iptables-restore commits each table at its COMMIT: the tables complete before the bad line still apply.
      parseError = e;
      doc = parseRestore(committedPrefix(text, e.line));
    }
    for (const section of doc.tables) {
      try {
        const next = applySection(this.tables.get(section.name), section, { noflush: opts.noflush, backend: this.backend, family: this.family });
        this.tables.set(section.name, next);
        this.keepCounters(section, next, opts);
      } catch (e) {
        if (e instanceof TableError) return this.error(text, e.line, e.message, e.exitCode);
        throw e;
      }
    }
    if (parseError) return this.error(text, parseError.line, parseError.message.replace(/^line \d+: /, ''), 2);
    return null;
  }

  private error(text: string, line: number | null, detail: string, exitCode: number): RestoreError {
    const where = line === null ? '' : ` at input line ${line}`;
    const stderr = line === null ? `${this.binary}: ${detail}\n` : `${this.binary}: line ${line} failed: ${detail}\n`;
    return new RestoreError({
      message: `${this.binary} (fake) failed with exit code ${exitCode}${where}: ${detail}`,
      exitCode,
      stderr,
      line,
      context: line === null ? '' : extractLines(text, line),
    });
  }

  /** Traffic stand-in: adds to the counters of the first rule of table/chain whose text contains `rule`. */
  count(table: string, chain: string, rule: string, packets: number, bytes: number): void {
    const text = this.tables
      .get(table)
      ?.get(chain)
      ?.rules.find((r) => r.includes(rule));
    if (text === undefined) throw new Error(`fake iptables: no rule containing ${JSON.stringify(rule)} in ${table}/${chain}`);
    let chains = this.counters.get(table);
    if (!chains) this.counters.set(table, (chains = new Map()));
    let byRule = chains.get(chain);
    if (!byRule) chains.set(chain, (byRule = new Map()));
    const c = byRule.get(text) ?? [0, 0];
    byRule.set(text, [c[0] + packets, c[1] + bytes]);
  }

  /**
   * After a committed section: chains it declared, flushed or zeroed (the whole table without --noflush) start from
   * zero; with --counters, rules given as "[packets:bytes] -A ..." start from those.
   */
  private keepCounters(section: RestoreTable, next: FakeTable, opts: RestoreOptions): void {
    let chains = this.counters.get(section.name);
    if (!chains) this.counters.set(section.name, (chains = new Map()));
    if (!opts.noflush) chains.clear();
    for (const d of section.declarations) if (!isBuiltinChain(section.name, d.chain)) chains.delete(d.chain);
    for (const op of section.ops) {
      if (op.op !== 'F' && op.op !== 'X' && op.op !== 'Z') continue;
      if (op.chain === null) chains.clear();
      else chains.delete(op.chain);
    }
    for (const [chain, byRule] of chains) {
      const rules = new Set(next.get(chain)?.rules ?? []);
      for (const r of byRule.keys()) if (!rules.has(r)) byRule.delete(r);
    }
    if (!opts.counters) return;
    for (const op of section.ops) {
      const m = op.counters === undefined ? null : /^\[(\d+):(\d+)\]$/.exec(op.counters);
      if (!m || (op.op !== 'A' && op.op !== 'I') || op.rule === undefined || op.chain === null) continue;
      let byRule = chains.get(op.chain);
      if (!byRule) chains.set(op.chain, (byRule = new Map()));
      byRule.set(op.rule, [Number(m[1]), Number(m[2])]);
    }
  }

  /** iptables-save output: the given tables (each printed even if untouched), else every table that exists. */
  async save(tables?: readonly string[], opts?: SaveOptions): Promise<string> {
    const names = tables ?? this.existingTables();
    const stamp = 'Thu Jan  1 00:00:00 1970';
    const tool = this.binary.replace('-restore', '-save');
    const out: string[] = [];
    for (const name of names) {
      if (BUILTIN_CHAINS[name] === undefined) throw new Error(`${tool}: table '${name}' does not exist`);
      out.push(`# Generated by ${tool} v1.8.9 (fake) on ${stamp}`, `*${name}`);
      const chains = orderedChains(name, this.tables.get(name) ?? freshTable(name));
      for (const [c, ch] of chains) out.push(`:${c} ${ch.policy ?? '-'} [0:0]`);
      for (const [c, ch] of chains) {
        const counted = this.counters.get(name)?.get(c);
        for (const r of ch.rules) {
          const line = r === '' ? `-A ${c}` : `-A ${c} ${r}`;
          if (!opts?.counters) out.push(line);
          else {
            const [p, b] = counted?.get(r) ?? [0, 0];
            out.push(`[${p}:${b}] ${line}`);
          }
        }
      }
      out.push('COMMIT', `# Completed on ${stamp}`);
    }
    return out.length ? out.join('\n') + '\n' : '';
  }

  /** The current state as a Ruleset, tables and chains in iptables-save order. */
  snapshot(): Ruleset {
    const tables: Table[] = this.existingTables().map((name) => ({
      name,
      chains: orderedChains(name, this.tables.get(name)!).map(([c, ch]) => ({ name: c, policy: ch.policy, rules: [...ch.rules] })),
    }));
    return { family: this.family, tables };
  }

  /** Tables in the order iptables-save lists them: creation order (nft), newest first (legacy). */
  private existingTables(): string[] {
    const names = [...this.tables.keys()];
    return this.backend === 'legacy' ? names.reverse() : names;
  }
}

/** Built-in chains in their fixed order, then user chains sorted by name, as iptables-save prints them. */
function orderedChains(table: string, chains: FakeTable): [string, FakeChain][] {
  const builtin = (BUILTIN_CHAINS[table] ?? []).filter((c) => chains.has(c)).map((c): [string, FakeChain] => [c, chains.get(c)!]);
  const user = [...chains].filter(([c]) => !isBuiltinChain(table, c)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [...builtin, ...user];
}

/** The input up to the last COMMIT before `line`. */
function committedPrefix(text: string, line: number): string {
  const lines = text.split('\n').slice(0, line - 1);
  let end = lines.length;
  while (end > 0 && lines[end - 1]!.trim() !== 'COMMIT') end--;
  return lines.slice(0, end).join('\n') + '\n';
}
