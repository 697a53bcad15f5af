/**
 * The one writer of `nft -f` input: one operation per line, in knftables'
 * text form (`<verb> <type> <family> kube-proxy <name> [{ ... ; }]`), so a
 * transaction reads like upstream's and its operation count is its line
 * count (upstream's Transaction.NumOperations).
 */
import { elementText, quote, type NftChain, type NftElement, type NftFamily, type NftSet } from './model.ts';
import { TABLE_NAME } from './model.ts';

export type ContainerKind = 'set' | 'map';

export class Transaction {
  private readonly lines: string[] = [];
  private readonly where: string;
  readonly family: NftFamily;

  constructor(family: NftFamily) {
    this.family = family;
    this.where = `${family} ${TABLE_NAME}`;
  }

  get operations(): number {
    return this.lines.length;
  }

  /** The transaction text, or "" when it holds no operation. */
  text(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }

  addTable(comment: string | null): void {
    this.lines.push(comment === null ? `add table ${this.where}` : `add table ${this.where} { comment ${quote(comment)} ; }`);
  }

  deleteTable(): void {
    this.lines.push(`delete table ${this.where}`);
  }

  /** `add chain`: creates the chain (a base chain with its hook) unless it exists. */
  addChain(chain: Pick<NftChain, 'name' | 'base' | 'comment'>): void {
    const opts: string[] = [];
    if (chain.base) opts.push(`type ${chain.base.type} hook ${chain.base.hook} priority ${chain.base.priority} ;`);
    if (chain.comment !== null) opts.push(`comment ${quote(chain.comment)} ;`);
    this.lines.push(`add chain ${this.where} ${chain.name}${opts.length ? ` { ${opts.join(' ')} }` : ''}`);
  }

  flushChain(name: string): void {
    this.lines.push(`flush chain ${this.where} ${name}`);
  }

  deleteChain(name: string): void {
    this.lines.push(`delete chain ${this.where} ${name}`);
  }

  addRule(chain: string, rule: string): void {
    this.lines.push(`add rule ${this.where} ${chain} ${rule}`);
  }

  /** add chain + flush chain + its rules: the chain holds exactly `rules` afterwards (upstream ensureChain). */
  rewriteChain(chain: NftChain): void {
    this.addChain(chain);
    this.flushChain(chain.name);
    for (const r of chain.rules) this.addRule(chain.name, r);
  }

  /** Declaration options in knftables' order: type, flags, timeout, comment. */
  addSet(set: Pick<NftSet, 'name' | 'kind' | 'type' | 'flags' | 'timeout' | 'comment'>): void {
    const opts = [`type ${set.type} ;`];
    if (set.flags.length > 0) opts.push(`flags ${set.flags.join(',')} ;`);
    if (set.timeout !== null) opts.push(`timeout ${set.timeout}s ;`);
    if (set.comment !== null) opts.push(`comment ${quote(set.comment)} ;`);
    this.lines.push(`add ${set.kind} ${this.where} ${set.name} { ${opts.join(' ')} }`);
  }

  flushSet(kind: ContainerKind, name: string): void {
    this.lines.push(`flush ${kind} ${this.where} ${name}`);
  }

  deleteSet(kind: ContainerKind, name: string): void {
    this.lines.push(`delete ${kind} ${this.where} ${name}`);
  }

  addElement(set: string, element: NftElement): void {
    this.lines.push(`add element ${this.where} ${set} { ${elementText(element)} }`);
  }

  /** Deletes carry only the key, as knftables writes them. */
  deleteElement(set: string, key: string): void {
    this.lines.push(`delete element ${this.where} ${set} { ${key} }`);
  }
}
