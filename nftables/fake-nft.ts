/**
 * An in-memory nft with the kernel's transaction semantics as measured with
 * nft 1.0.6 on Linux 6.18 (the cases of fake-nft.case.ts run on both, in
 * fake-nft.test.ts and nft.e2e.test.ts): all-or-nothing transactions; `add`
 * of an existing object is a no-op (a changed element comment is kept, a
 * changed set timeout applied in place, a changed base-chain priority is
 * "Operation not supported", a map element with another value "File
 * exists"); flush/delete of a missing object "No such file or
 * directory"; deleting a chain still referenced by a rule or a map element
 * "Device or resource busy" (references dropped earlier in the same
 * transaction, by flush or delete element, no longer count on 6.18; on
 * kernels before 6.2 a deleted element releases its chain only later, which
 * is why stale chains are deleted a second after). Rules are checked by the
 * rule reader and must name existing chains and sets; an element key must
 * have its set's width and address family (keyMismatch); in a transaction
 * without a command that makes nft 1.0.6 load its cache (add rule, add
 * element, delete, flush set), a rule can name only sets declared earlier in
 * it. Implements the same NftApi as the real adapter.
 */
import { parseIP } from '../proxier/ip.ts';
import type { IPFamily } from '../proxier/types.ts';
import { NftError, type NftErrorKind } from './errors.ts';
import type { LiveNames } from './full-sync.ts';
import type { CounterOptions, CounterValue, NftApi } from './nft.ts';
import { TABLE_NAME, type BaseChainSpec, type NftChain, type NftElement, type NftFamily, type NftSet, type NftTable } from './model.ts';
import { normalizeElement } from './normalize.ts';
import { ruleCounters, ruleSets, ruleTargets } from './rule-ast.ts';
import { normalizeRule } from './rule-print.ts';
import { parseRule } from './rule-text.ts';
import { parseScript, ScriptError, type ScriptLine } from './script.ts';
import { Transaction } from './transaction.ts';

interface FChain {
  base: BaseChainSpec | null;
  comment: string | null;
  rules: string[];
}
interface FSet {
  decl: Omit<NftSet, 'elements'>;
  elements: Map<string, NftElement>;
}
interface FTable {
  comment: string | null;
  chains: Map<string, FChain>;
  sets: Map<string, FSet>;
  /** Named counters, in the order they were made (nft lists them by handle). */
  counters: Map<string, { name: string; packets: number; bytes: number }>;
}

class Fail extends Error {
  readonly kind: NftErrorKind;
  constructor(kind: NftErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

const MESSAGES: Record<NftErrorKind, string> = {
  'not-found': 'Could not process rule: No such file or directory',
  exists: 'Could not process rule: File exists',
  busy: 'Could not process rule: Device or resource busy',
  unsupported: 'Could not process rule: Operation not supported',
  syntax: 'syntax error',
  other: 'failed',
};

const verdictChain = (value: string | null): string | null => /^(?:goto|jump) (\S+)$/.exec(value ?? '')?.[1] ?? null;

export class FakeNft implements NftApi {
  private tables = new Map<NftFamily, FTable>();
  /** Operations of the last successful run (upstream's LastTransaction.NumOperations). */
  lastOperations = 0;
  /** Every successful transaction's text, in order. */
  readonly history: string[] = [];

  async run(text: string): Promise<void> {
    const { tables, ops } = this.apply(text);
    this.tables = tables;
    this.lastOperations = ops;
    this.history.push(text);
  }

  async check(text: string): Promise<void> {
    this.apply(text);
  }

  async list(family: NftFamily): Promise<NftTable | null> {
    const t = this.tables.get(family);
    if (!t) return null;
    // As `nft -j list` shows it: canonical rules, no table or chain comments, no "dynamic" flag.
    return {
      family,
      name: TABLE_NAME,
      comment: null,
      chains: [...t.chains].map(([name, c]) => ({ name, base: c.base, comment: null, rules: c.rules.map(normalizeRule) })),
      sets: [...t.sets].map(([, s]) => ({
        ...s.decl,
        flags: s.decl.flags.filter((f) => f !== 'dynamic'),
        elements: s.decl.name.startsWith('affinity-') ? null : [...s.elements.values()].map(normalizeElement),
      })),
      ...(t.counters.size > 0 ? { counters: [...t.counters.keys()] } : {}),
    };
  }

  /** As Nft.counters: the table's named counters with their values (zeroed with `reset`); null when there is no table. */
  async counters(family: NftFamily, options: CounterOptions = {}): Promise<CounterValue[] | null> {
    const t = this.tables.get(family);
    if (!t) return null;
    const out = [...t.counters.values()].map((c) => ({ ...c }));
    if (options.reset) for (const c of t.counters.values()) c.packets = c.bytes = 0;
    return out;
  }

  /** What the kernel would do for traffic through a counting rule (tests): adds to a named counter. */
  count(family: NftFamily, name: string, packets: number, bytes: number): void {
    const c = this.tables.get(family)?.counters.get(name);
    if (!c) throw new Error(`no counter ${name} in table ${family} ${TABLE_NAME}`);
    c.packets += packets;
    c.bytes += bytes;
  }

  async deleteTable(family: NftFamily): Promise<boolean> {
    return this.tables.delete(family);
  }

  /** As Nft.listNames: the table's chain, set and map names and its base chains (policy accept, the only one the fake takes); null when it is missing or holds none of them. */
  async listNames(family: NftFamily): Promise<LiveNames | null> {
    const t = this.tables.get(family);
    if (!t || (t.chains.size === 0 && t.sets.size === 0)) return null;
    const baseChains = [...t.chains].flatMap(([name, c]) => (c.base ? [{ name, ...c.base, policy: 'accept' }] : []));
    return { chains: [...t.chains.keys()], sets: [...t.sets.values()].map((s) => ({ name: s.decl.name, kind: s.decl.kind })), baseChains };
  }

  /** The table as written (rules as given), or null. */
  table(family: NftFamily): NftTable | null {
    const t = this.tables.get(family);
    if (!t) return null;
    const chains: NftChain[] = [...t.chains].map(([name, c]) => ({ name, base: c.base, comment: c.comment, rules: [...c.rules] }));
    const sets: NftSet[] = [...t.sets].map(([, s]) => ({ ...s.decl, elements: [...s.elements.values()] }));
    return { family, name: TABLE_NAME, comment: t.comment, chains, sets, ...(t.counters.size > 0 ? { counters: [...t.counters.keys()] } : {}) };
  }

  /** knftables Fake.Dump(): the table as `add` lines (table, chains, sets and maps, rules, elements). */
  dump(family: NftFamily): string {
    const t = this.table(family);
    if (!t) return '';
    const tx = new Transaction(family);
    tx.addTable(t.comment);
    for (const c of [...t.chains].sort((a, b) => (a.name < b.name ? -1 : 1))) tx.addChain(c);
    for (const s of [...t.sets].sort((a, b) => (a.name < b.name ? -1 : 1))) tx.addSet(s);
    for (const name of [...(t.counters ?? [])].sort()) tx.addCounter(name);
    for (const c of t.chains) for (const r of c.rules) tx.addRule(c.name, r);
    for (const s of t.sets) for (const e of s.elements ?? []) tx.addElement(s.name, e);
    return tx.text();
  }

  private apply(text: string): { tables: Map<NftFamily, FTable>; ops: number } {
    let lines: ScriptLine[];
    try {
      lines = parseScript(text);
    } catch (err) {
      if (!(err instanceof ScriptError)) throw err;
      throw this.error('syntax', err.line, text.split('\n')[err.line - 1] ?? '', err.message);
    }
    const tables = structuredClone(this.tables);
    // nft 1.0.6 loads its set cache only for some commands (cache.c nft_cache_evaluate); without it a rule can
    // name only sets declared earlier in the same transaction.
    const cached = lines.some((l) => /^(add rule|add element|delete |flush set|flush map)/.test(l.text));
    const declared = new Set<string>();
    for (const l of lines) {
      if (!cached && (l.op.type === 'set' || l.op.type === 'map') && l.op.verb === 'add') declared.add(l.op.name);
      if (!cached && l.op.type === 'rule') {
        const missing = ruleSetsOf(l.op.rule).find((s) => !declared.has(s));
        if (missing !== undefined) throw this.error('not-found', l.line, l.text, `set ${missing} is neither in nft's cache nor declared before`);
      }
      if (l.table !== TABLE_NAME) throw this.error('other', l.line, l.text, `the fake holds only table ${TABLE_NAME}`);
      try {
        step(tables, l);
      } catch (err) {
        if (!(err instanceof Fail)) throw err;
        throw this.error(err.kind, l.line, l.text, err.message);
      }
    }
    return { tables, ops: lines.length };
  }

  private error(kind: NftErrorKind, line: number, lineText: string, detail: string): NftError {
    const stderr = `/dev/stdin:${line}:1-1: Error: ${kind === 'syntax' || kind === 'other' ? detail : MESSAGES[kind]}\n${lineText}\n`;
    return new NftError({ what: 'nft -f -', kind, line, lineText, stderr, exitCode: 1 });
  }
}

function ruleSetsOf(rule: string): string[] {
  try {
    return ruleSets(parseRule(rule));
  } catch {
    return []; // step() reports the syntax error
  }
}

const ADDRESS_TYPES: Readonly<Record<string, IPFamily>> = { ipv4_addr: 'IPv4', ipv6_addr: 'IPv6' };

/**
 * Why nft refuses `key` for a set or map of `type` (nft 1.0.6, measured), or null: a concatenation of another width
 * ("datatype mismatch", on add and delete alike), an address of the other family in an address field. Fields of
 * other types are not checked (nft takes `80 . tcp` for `inet_proto . inet_service`).
 */
function keyMismatch(type: string, key: string): string | null {
  const fields = type.split(' : ')[0]!.split(' . ');
  const parts = key.split(' . ');
  if (parts.length !== fields.length) return `datatype mismatch, expected ${fields.length} fields, key ${key} has ${parts.length}`;
  for (const [i, field] of fields.entries()) {
    const family = ADDRESS_TYPES[field];
    const address = parseIP(parts[i]!.split(/[/-]/)[0]!);
    if (family !== undefined && address !== null && address.family !== family)
      return `Could not resolve hostname: Address family for hostname not supported (${parts[i]} in ${field})`;
  }
  return null;
}

function referenced(t: FTable, chain: string): boolean {
  for (const c of t.chains.values()) for (const r of c.rules) if (ruleTargets(parseRule(r)).includes(chain)) return true;
  for (const s of t.sets.values()) for (const e of s.elements.values()) if (verdictChain(e.value) === chain) return true;
  return false;
}

function step(tables: Map<NftFamily, FTable>, l: ScriptLine): void {
  const op = l.op;
  const notFound = (what: string) => new Fail('not-found', `${what} not found`);
  if (op.type === 'table') {
    if (op.verb === 'add') {
      if (!tables.has(l.family)) tables.set(l.family, { comment: op.comment, chains: new Map(), sets: new Map(), counters: new Map() });
      return;
    }
    const t = tables.get(l.family);
    if (!t) throw notFound('table');
    if (op.verb === 'delete') tables.delete(l.family);
    else for (const c of t.chains.values()) c.rules = []; // flush table keeps set and map elements
    return;
  }
  const t = tables.get(l.family);
  if (!t) throw notFound('table');
  switch (op.type) {
    case 'chain': {
      const c = t.chains.get(op.name);
      if (op.verb === 'add') {
        if (!c) t.chains.set(op.name, { base: op.base, comment: op.comment, rules: [] });
        else if (op.base && JSON.stringify(op.base) !== JSON.stringify(c.base)) throw new Fail('unsupported', 'chain hook or priority changed');
        return;
      }
      if (!c) throw notFound(`chain ${op.name}`);
      if (op.verb === 'flush') c.rules = [];
      else {
        const others = t.chains.get(op.name)!;
        t.chains.delete(op.name);
        if (referenced(t, op.name)) {
          t.chains.set(op.name, others);
          throw new Fail('busy', `chain ${op.name} is in use`);
        }
      }
      return;
    }
    case 'rule': {
      const c = t.chains.get(op.chain);
      if (!c) throw notFound(`chain ${op.chain}`);
      let rule;
      try {
        rule = parseRule(op.rule);
      } catch (err) {
        throw new Fail('syntax', (err as Error).message);
      }
      for (const target of ruleTargets(rule)) if (!t.chains.has(target)) throw notFound(`chain ${target}`);
      for (const s of ruleSets(rule)) if (!t.sets.has(s)) throw notFound(`set ${s}`);
      for (const n of ruleCounters(rule)) if (!t.counters.has(n)) throw notFound(`counter ${n}`);
      c.rules.push(op.rule);
      return;
    }
    case 'counter': {
      // `add` of an existing counter keeps its values (nf_tables_newobj: counters have no update).
      if (op.verb === 'add') {
        if (!t.counters.has(op.name)) t.counters.set(op.name, { name: op.name, packets: 0, bytes: 0 });
        return;
      }
      if (!t.counters.has(op.name)) throw notFound(`counter ${op.name}`);
      const used = [...t.chains.values()].some((c) => c.rules.some((r) => ruleCounters(parseRule(r)).includes(op.name)));
      if (used) throw new Fail('busy', `counter ${op.name} is in use`);
      t.counters.delete(op.name);
      return;
    }
    case 'set':
    case 'map': {
      const s = t.sets.get(op.name);
      if (op.verb === 'add') {
        const decl = { name: op.name, kind: op.type, type: op.setType, flags: op.flags, timeout: op.timeout, comment: op.comment };
        if (!s) t.sets.set(op.name, { decl, elements: new Map() });
        else if (s.decl.type !== op.setType || s.decl.kind !== op.type) throw new Fail('exists', `${op.type} ${op.name} exists with another type`);
        else s.decl = { ...s.decl, timeout: op.timeout }; // Linux 6.18 updates the timeout in place
        return;
      }
      if (!s || s.decl.kind !== op.type) throw notFound(`${op.type} ${op.name}`);
      if (op.verb === 'flush') s.elements.clear();
      else {
        const used = [...t.chains.values()].some((c) => c.rules.some((r) => ruleSets(parseRule(r)).includes(op.name)));
        if (used) throw new Fail('busy', `${op.type} ${op.name} is in use`);
        t.sets.delete(op.name);
      }
      return;
    }
    case 'element': {
      const s = t.sets.get(op.set);
      if (!s) throw notFound(`set ${op.set}`);
      for (const e of op.elements) {
        const mismatch = keyMismatch(s.decl.type, e.key);
        if (mismatch !== null) throw new Fail('other', mismatch);
        const have = s.elements.get(e.key);
        if (op.verb === 'delete') {
          if (!have) throw notFound(`element ${e.key}`);
          s.elements.delete(e.key);
          continue;
        }
        const chain = verdictChain(e.value);
        if (chain !== null && !t.chains.has(chain)) throw notFound(`chain ${chain}`);
        if (!have) s.elements.set(e.key, e);
        else if (have.value !== e.value) throw new Fail('exists', `element ${e.key} exists with another value`);
      }
      return;
    }
  }
}
