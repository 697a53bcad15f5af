/**
 * A read-only map made of a shared base and a small layer of changes over
 * it: the applied service ports after a partial sync, which changes a few of
 * 10,000. A new 10,000-entry Map per sync was ~1 MB that lived until the next
 * sync and then became old-space garbage: the in-process peak at 10,000
 * services rose ~9 MB over the first 35 endpoint events, until V8's next full
 * collection (BENCHMARKS.md). `with` copies only the layer, and folds it into
 * a new base once it holds more than ~sqrt(base) keys, so a sync copies
 * O(sqrt n) entries and a lookup is at most two probes. Neither map is ever
 * modified: an older state stays valid. The price: until a fold, the base
 * still holds the values the layer replaced or removed (at most foldAt of
 * them, a few hundred KB at 10,000 service ports).
 *
 * Iteration yields the base's order with replaced values in place and
 * removed keys skipped, then keys new in the layer in the order they came.
 */
const GONE: unique symbol = Symbol('gone');
type Slot<V> = V | typeof GONE;

/** The layer is folded into the base once it holds more keys than this. */
export function foldAt(baseSize: number): number {
  return Math.max(64, Math.ceil(Math.sqrt(baseSize)));
}

export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  private readonly base: ReadonlyMap<K, V>;
  private readonly layer: ReadonlyMap<K, Slot<V>>;
  readonly size: number;

  private constructor(base: ReadonlyMap<K, V>, layer: ReadonlyMap<K, Slot<V>>, size: number) {
    this.base = base;
    this.layer = layer;
    this.size = size;
  }

  /** Keys held in the layer (at most foldAt(base size)): for tests. */
  get layerSize(): number {
    return this.layer.size;
  }

  /** `map` itself when it is a LayeredMap already, else a layered view of it (not copied). */
  static over<K, V>(map: ReadonlyMap<K, V>): LayeredMap<K, V> {
    return map instanceof LayeredMap ? (map as LayeredMap<K, V>) : new LayeredMap(map, new Map(), map.size);
  }

  /** A new map with these keys set, or removed where the value is undefined; this one is unchanged. */
  with(changes: ReadonlyMap<K, V | undefined>): LayeredMap<K, V> {
    if (changes.size === 0) return this;
    const layer = new Map<K, Slot<V>>(this.layer);
    let size = this.size;
    for (const [k, v] of changes) {
      const had = this.has(k);
      if (v === undefined) {
        if (!had) continue;
        size--;
        if (this.base.has(k)) layer.set(k, GONE);
        else layer.delete(k);
      } else {
        if (!had) size++;
        layer.set(k, v);
      }
    }
    const next = new LayeredMap(this.base, layer, size);
    return layer.size > foldAt(this.base.size) ? new LayeredMap(new Map(next), new Map(), size) : next;
  }

  get(key: K): V | undefined {
    const v = this.layer.get(key);
    if (v !== undefined) return v === GONE ? undefined : v;
    return this.base.get(key);
  }

  has(key: K): boolean {
    const v = this.layer.get(key);
    if (v !== undefined) return v !== GONE;
    return this.base.has(key);
  }

  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) {
      const over = this.layer.get(k);
      if (over === undefined) yield [k, v];
      else if (over !== GONE) yield [k, over];
    }
    for (const [k, v] of this.layer) if (v !== GONE && !this.base.has(k)) yield [k, v];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}
