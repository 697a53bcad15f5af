/**
 * The elements of every set and map as last applied, with how many service
 * ports want each key (a ClusterIP is in cluster-ips once, however many
 * ports its service has) — upstream's nftElementStorage, made incremental:
 * a partial sync touches only the keys of the service ports that changed,
 * copying only the sets it changes, so its cost does not grow with the
 * cluster. Net effect per key decides the operations: gone -> delete, new
 * -> add, other value or comment -> delete + add (an `add` would keep the
 * old one: "File exists" for a value, silently for a comment).
 */
import type { NftElement } from './model.ts';

export interface StoredElement {
  readonly element: NftElement;
  /** Service ports (or the fixed part) that want this key. */
  readonly refs: number;
}

export type ElementStore = ReadonlyMap<string, ReadonlyMap<string, StoredElement>>;

const same = (a: NftElement, b: NftElement): boolean => a.value === b.value && a.comment === b.comment;

/** A store holding `sets` (empty) and the given contributions, later ones winning a key's value. */
export function buildStore(sets: readonly string[], contributions: Iterable<{ readonly set: string; readonly element: NftElement }>): ElementStore {
  const store = new Map<string, Map<string, StoredElement>>(sets.map((s) => [s, new Map()]));
  for (const { set, element } of contributions) {
    const m = store.get(set);
    if (!m) throw new Error(`element for unknown set ${set}`);
    const had = m.get(element.key);
    m.set(element.key, { element, refs: (had?.refs ?? 0) + 1 });
  }
  return store;
}

/** Changes against a base store; the base is never modified (a failed transaction keeps it valid). */
export class ElementChanges {
  private readonly base: ElementStore;
  private readonly copies = new Map<string, Map<string, StoredElement>>();
  private readonly touched = new Map<string, Set<string>>();
  private readonly dropped = new Set<string>();

  constructor(base: ElementStore) {
    this.base = base;
  }

  private writable(set: string): Map<string, StoredElement> {
    let m = this.copies.get(set);
    if (!m) {
      m = new Map(this.dropped.has(set) ? [] : (this.base.get(set) ?? []));
      this.copies.set(set, m);
    }
    let t = this.touched.get(set);
    if (!t) this.touched.set(set, (t = new Set()));
    return m;
  }

  /** A service port (or the fixed part) went from `before` to `after`. */
  replace(before: readonly { set: string; element: NftElement }[], after: readonly { set: string; element: NftElement }[]): void {
    // A dropped set holds nothing any more: what it had is not "before".
    const old = new Map(before.filter((e) => !this.dropped.has(e.set)).map((e) => [`${e.set}\u0000${e.element.key}`, e]));
    for (const e of after) {
      const k = `${e.set}\u0000${e.element.key}`;
      const o = old.get(k);
      old.delete(k);
      if (o === undefined) this.acquire(e.set, e.element);
      else if (!same(o.element, e.element)) this.update(e.set, e.element);
    }
    for (const o of old.values()) this.release(o.set, o.element.key);
  }

  private acquire(set: string, element: NftElement): void {
    const m = this.writable(set);
    this.touched.get(set)!.add(element.key);
    const had = m.get(element.key);
    m.set(element.key, { element, refs: (had?.refs ?? 0) + 1 });
  }

  private update(set: string, element: NftElement): void {
    const m = this.writable(set);
    this.touched.get(set)!.add(element.key);
    const had = m.get(element.key);
    m.set(element.key, { element, refs: had?.refs ?? 1 });
  }

  private release(set: string, key: string): void {
    const m = this.writable(set);
    this.touched.get(set)!.add(key);
    const had = m.get(key);
    if (had === undefined) return;
    if (had.refs <= 1) m.delete(key);
    else m.set(key, { ...had, refs: had.refs - 1 });
  }

  /** A set that is deleted (or re-created empty) in this transaction: its elements go with it. */
  dropSet(set: string): void {
    this.dropped.add(set);
    this.copies.set(set, new Map());
    this.touched.set(set, new Set());
  }

  /** Operations in order: deletes first, then adds (delete + add for a changed value). */
  operations(): { deletes: [string, string][]; adds: [string, NftElement][] } {
    const deletes: [string, string][] = [];
    const adds: [string, NftElement][] = [];
    for (const [set, keys] of this.touched) {
      const before = this.dropped.has(set) ? undefined : this.base.get(set);
      const after = this.copies.get(set)!;
      for (const key of keys) {
        const b = before?.get(key)?.element;
        const a = after.get(key)?.element;
        if (b && (!a || !same(a, b))) deletes.push([set, key]);
        if (a && (!b || !same(a, b))) adds.push([set, a]);
      }
    }
    return { deletes, adds };
  }

  /** The store after the changes; untouched sets are shared with the base. */
  result(sets: readonly string[]): ElementStore {
    return new Map(sets.map((s) => [s, this.copies.get(s) ?? this.base.get(s) ?? new Map()]));
  }
}
