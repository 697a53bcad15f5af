/**
 * The one writer of `nft -f` input, in knftables' text form
 * (`<verb> <type> <family> kube-proxy <name> [{ ... ; }]`), with one
 * difference that matters for speed: rules and elements are written inside
 * their chain's or set's block.
 *
 *   add chain ip kube-proxy service-X { rule ; rule ; }
 *   add map ip kube-proxy service-ips { type ... ; comment "..." ; elements = { e , e } ; }
 *
 * Why: nft 1.0.6 decides from the commands which cache it loads before it
 * reads them (cache.c nft_cache_evaluate). `add rule` and `add element`
 * make it dump every chain and set of every table and build an object for
 * each — 0.3–0.4 s at 10,000 services (60,000 chains), most of it in malloc
 * and page faults, plus the kernel's chain dump, which restarts its walk for
 * every netlink message. `add chain` and `add set`/`add map` with a block
 * need only the table list, so a transaction without `delete` commands
 * starts in a few milliseconds. The kernel sees the same messages either way
 * (NEWCHAIN on an existing chain changes nothing; NEWRULE per rule; NEWSET on
 * an existing set with the same declaration; NEWSETELEM).
 *
 * Without its cache nft knows only the sets this transaction declares, and a
 * rule naming `@set` needs the set's type: the writer declares every set a
 * rule refers to before the rule (once), from the declarations it was given.
 * Deletes (`delete element`, `delete chain`, `delete set`) still make nft
 * load its whole cache; nothing cheaper exists in nft 1.0.6 (`destroy`
 * came with 1.0.8).
 *
 * `operations` counts what knftables would count (upstream's
 * NumOperations): a chain, a flush, each rule, each element; repeated
 * declarations the writer adds for nft's sake are not counted.
 *
 * The text is kept as lines, joined into a chunk every ~64 KiB and the
 * chunks joined once at the end: a full sync at 10,000 services writes
 * ~120,000 lines (20 MB), and joining them all at once, or appending each
 * to a string, took about twice as long for the same lines (measured alone).
 * The text is the same.
 */
import { elementText, quote, type NftChain, type NftElement, type NftFamily, type NftSet } from './model.ts';
import { TABLE_NAME } from './model.ts';
import { PackedChain } from './packed-chain.ts';

export type ContainerKind = 'set' | 'map';
export type SetDecl = Pick<NftSet, 'name' | 'kind' | 'type' | 'flags' | 'timeout' | 'comment'>;

/** `@name` references in a rule (sets and maps it looks up or updates). */
const SET_REF = /@([^\s{},;]+)/g;

/** `counter name "X"` references in a rule (named counters it counts into). */
const COUNTER_REF = /counter name "([^"]+)"/g;

/** Characters per chunk of text before it is put aside (see above). */
const CHUNK_CHARS = 65_536;

export class Transaction {
  /** Joined text of earlier lines, each chunk ending in a newline. */
  private readonly chunks: string[] = [];
  private lines: string[] = [];
  private chars = 0;
  private readonly where: string;
  private readonly known: ReadonlyMap<string, SetDecl>;
  private readonly declared = new Set<string>();
  /** Counters this transaction has added. */
  private readonly counters = new Set<string>();
  private ops = 0;
  readonly family: NftFamily;

  /** `sets`: declarations the writer may repeat when a rule or an element block needs one. */
  constructor(family: NftFamily, sets: Iterable<SetDecl> = []) {
    this.family = family;
    this.where = `${family} ${TABLE_NAME}`;
    this.known = new Map([...sets].map((s) => [s.name, s]));
  }

  get operations(): number {
    return this.ops;
  }

  /** The transaction text, or "" when it holds no operation. */
  text(): string {
    const rest = this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
    return this.chunks.length === 0 ? rest : this.chunks.join('') + rest;
  }

  private push(line: string, ops: number): void {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars > CHUNK_CHARS) {
      this.chunks.push(this.lines.join('\n') + '\n');
      this.lines = [];
      this.chars = 0;
    }
    this.ops += ops;
  }

  addTable(comment: string | null): void {
    this.push(comment === null ? `add table ${this.where}` : `add table ${this.where} { comment ${quote(comment)} ; }`, 1);
  }

  deleteTable(): void {
    this.push(`delete table ${this.where}`, 1);
  }

  /** `add chain`: creates the chain (a base chain with its hook) unless it exists. */
  addChain(chain: Pick<NftChain, 'name' | 'base' | 'comment'>): void {
    const opts = chainOptions(chain);
    this.push(`add chain ${this.where} ${chain.name}${opts === '' ? '' : ` { ${opts} }`}`, 1);
  }

  flushChain(name: string): void {
    this.push(`flush chain ${this.where} ${name}`, 1);
  }

  deleteChain(name: string): void {
    this.push(`delete chain ${this.where} ${name}`, 1);
  }

  /** One `add rule` line (the form knftables dumps; loads nft's whole cache). */
  addRule(chain: string, rule: string): void {
    this.push(`add rule ${this.where} ${chain} ${rule}`, 1);
  }

  /** Appends rules to an existing chain: `add chain X { r ; r ; }`, after declaring the sets they name. */
  addRules(chain: string, rules: readonly string[]): void {
    if (rules.length === 0) return;
    for (const r of rules) if (r.includes('@')) for (const m of r.matchAll(SET_REF)) this.declareOnce(m[1]!);
    for (const r of rules) if (r.includes('counter name')) this.countersOf(r);
    this.push(`add chain ${this.where} ${chain} { ${rules.join(' ; ')} ; }`, rules.length);
  }

  /** addRules of a chain; a packed one's rules are written from its text, without splitting it. */
  addChainRules(chain: NftChain): void {
    if (!(chain instanceof PackedChain)) return this.addRules(chain.name, chain.rules);
    if (chain.count === 0) return;
    const { text } = chain;
    // SET_REF stops at whitespace, so a match never runs from one rule into the next.
    if (text.includes('@')) for (const m of text.matchAll(SET_REF)) this.declareOnce(m[1]!);
    if (text.includes('counter name')) this.countersOf(text);
    const rules = chain.count === 1 ? text : text.replaceAll('\n', ' ; ');
    this.push(`add chain ${this.where} ${chain.name} { ${rules} ; }`, chain.count);
  }

  /** add chain + flush chain + its rules: the chain holds exactly `rules` afterwards (upstream ensureChain). */
  rewriteChain(chain: NftChain): void {
    this.addChain(chain);
    this.flushChain(chain.name);
    this.addChainRules(chain);
  }

  /** Declaration options in knftables' order: type, flags, timeout, comment. */
  addSet(set: SetDecl): void {
    this.push(`add ${set.kind} ${this.where} ${set.name} { ${setOptions(set)} }`, 1);
    this.declared.add(set.name);
  }

  flushSet(kind: ContainerKind, name: string): void {
    this.push(`flush ${kind} ${this.where} ${name}`, 1);
  }

  deleteSet(kind: ContainerKind, name: string): void {
    this.push(`delete ${kind} ${this.where} ${name}`, 1);
    this.declared.delete(name);
  }

  /** One `add element` line (the form knftables dumps; loads nft's whole cache). */
  addElement(set: string, element: NftElement): void {
    this.push(`add element ${this.where} ${set} { ${elementText(element)} }`, 1);
  }

  /** Elements in the set's declaration block (`add map X { type ... ; elements = { ... } ; }`) when it is known. */
  addElements(set: string, elements: readonly NftElement[]): void {
    if (elements.length === 0) return;
    const decl = this.known.get(set);
    const list = elements.map(elementText).join(' , ');
    if (decl === undefined) {
      this.push(`add element ${this.where} ${set} { ${list} }`, elements.length);
      return;
    }
    this.push(`add ${decl.kind} ${this.where} ${set} { ${setOptions(decl)} elements = { ${list} } ; }`, elements.length);
    this.declared.add(set);
  }

  /** Deletes carry only the key, as knftables writes them. */
  deleteElement(set: string, key: string): void {
    this.deleteElements(set, [key]);
  }

  deleteElements(set: string, keys: readonly string[]): void {
    if (keys.length === 0) return;
    this.push(`delete element ${this.where} ${set} { ${keys.join(' , ')} }`, keys.length);
  }

  /**
   * `add counter`: creates the named counter unless it exists (an existing one keeps its values). A counter must exist
   * before a rule names it; the writer adds it before the first rule of a transaction that does (countersOf).
   */
  addCounter(name: string): void {
    this.push(`add counter ${this.where} ${name}`, 1);
    this.counters.add(name);
  }

  /** `delete counter`: fails while a rule counts into it, and when there is none (add it first to be sure). */
  deleteCounter(name: string): void {
    this.push(`delete counter ${this.where} ${name}`, 1);
    this.counters.delete(name);
  }

  /** Adds, once per transaction, each counter the rules text names. */
  private countersOf(text: string): void {
    for (const m of text.matchAll(COUNTER_REF)) if (!this.counters.has(m[1]!)) this.addCounter(m[1]!);
  }

  /** Repeats a known set's declaration once, so nft can read a rule naming it without its cache. */
  private declareOnce(name: string): void {
    if (this.declared.has(name)) return;
    const decl = this.known.get(name);
    if (decl === undefined) return;
    this.push(`add ${decl.kind} ${this.where} ${decl.name} { ${setOptions(decl)} }`, 0);
    this.declared.add(name);
  }
}

/** `type ... hook ... priority N ; comment "c" ;`, the parts present joined by spaces; "" for none. */
function chainOptions(chain: Pick<NftChain, 'base' | 'comment'>): string {
  if (chain.base === null && chain.comment === null) return '';
  const hook = chain.base ? `type ${chain.base.type} hook ${chain.base.hook} priority ${chain.base.priority} ;` : '';
  if (chain.comment === null) return hook;
  return `${hook === '' ? '' : hook + ' '}comment ${quote(chain.comment)} ;`;
}

/** `type T ; [flags a,b ;] [timeout Ns ;] [comment "c" ;]` */
function setOptions(set: SetDecl): string {
  let opts = `type ${set.type} ;`;
  if (set.flags.length > 0) opts += ` flags ${set.flags.join(',')} ;`;
  if (set.timeout !== null) opts += ` timeout ${set.timeout}s ;`;
  if (set.comment !== null) opts += ` comment ${quote(set.comment)} ;`;
  return opts;
}

/** Pairs grouped by set name, in first-seen order of the sets and the given order within each. */
export function bySet<T>(pairs: Iterable<readonly [string, T]>): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const [set, item] of pairs) {
    const list = out.get(set);
    if (list) list.push(item);
    else out.set(set, [item]);
  }
  return out;
}
