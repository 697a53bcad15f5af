import { describe, expect, it } from 'vitest';
import { foldAt, LayeredMap } from './layered-map.ts';

/** A small deterministic generator (tests must not depend on Math.random). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const snapshot = <K, V>(m: ReadonlyMap<K, V>) => ({
  size: m.size,
  entries: [...m.entries()],
  keys: [...m.keys()],
  values: [...m.values()],
  spread: [...m],
  forEach: (() => {
    const out: [K, V][] = [];
    m.forEach((v, k, self) => {
      expect(self).toBe(m);
      out.push([k, v]);
    });
    return out;
  })(),
});

describe('LayeredMap (the applied service ports after partial syncs)', () => {
  it('answers get, has, size and iteration as a Map with the same changes would, through hundreds of syncs and folds', () => {
    const next = rng(7);
    const base = new Map(Array.from({ length: 400 }, (_, i) => [`k${i}`, i]));
    const model = new Map(base);
    let layered = LayeredMap.over(base);
    const versions: [LayeredMap<string, number>, Map<string, number>][] = [];
    for (let sync = 0; sync < 600; sync++) {
      const changes = new Map<string, number | undefined>();
      for (let j = 0, n = 1 + Math.floor(next() * 4); j < n; j++) {
        const key = `k${Math.floor(next() * 520)}`; // some keys new, some removed and re-added
        const value = next() < 0.3 ? undefined : sync * 10 + j;
        changes.set(key, value);
      }
      for (const [k, v] of changes) if (v === undefined) model.delete(k);
      for (const [k, v] of changes) if (v !== undefined) model.set(k, v);
      layered = layered.with(changes);
      expect(layered.size).toBe(model.size);
      // One assertion per sync (624,000 expect() calls took ~4 s of a 5 s budget on a loaded 2-core machine).
      const keys = Array.from({ length: 520 }, (_, k) => `k${k}`);
      expect(keys.map((k) => [layered.get(k), layered.has(k)])).toEqual(keys.map((k) => [model.get(k), model.has(k)]));
      expect(new Map(layered)).toEqual(model);
      expect(layered.layerSize).toBeLessThanOrEqual(foldAt(520)); // bases here stay under 4,096 keys: 64
      if (sync % 97 === 0) versions.push([layered, new Map(model)]);
    }
    // Every older version still reads as it did: nothing is modified in place.
    for (const [old, was] of versions) expect(new Map(old)).toEqual(was);
  });

  it('iterates in the base order with replaced values in place, removed keys skipped, new keys last', () => {
    const m = LayeredMap.over(
      new Map([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]),
    ).with(
      new Map<string, number | undefined>([
        ['d', 4],
        ['b', 20],
        ['a', undefined],
      ]),
    );
    const s = snapshot(m);
    expect(s.entries).toEqual([
      ['b', 20],
      ['c', 3],
      ['d', 4],
    ]);
    expect(s.keys).toEqual(['b', 'c', 'd']);
    expect(s.values).toEqual([20, 3, 4]);
    expect(s.spread).toEqual(s.entries);
    expect(s.forEach).toEqual(s.entries);
    expect(s.size).toBe(3);
  });

  it('does not copy the base: with() copies only the layer until it outgrows sqrt(base), then folds into one new base', () => {
    const base = new Map(Array.from({ length: 10_000 }, (_, i) => [i, i]));
    let m = LayeredMap.over(base);
    expect(LayeredMap.over(m)).toBe(m);
    expect(m.with(new Map())).toBe(m);
    for (let i = 0; i < foldAt(10_000); i++) m = m.with(new Map([[i, -i]]));
    expect(m.layerSize).toBe(foldAt(10_000));
    m = m.with(new Map([[10_000, 1]])); // one more: folded
    expect(m.layerSize).toBe(0);
    expect(m.size).toBe(10_001);
    expect(m.get(0)).toBe(-0);
    expect(m.get(5_000)).toBe(5_000);
    expect(base.get(0)).toBe(0); // the base Map itself is never written
    expect(base.size).toBe(10_000);
  });

  it('removing a key the layer added drops it from the layer; removing an absent key changes nothing', () => {
    const m = LayeredMap.over(new Map([['a', 1]]))
      .with(new Map([['x', 9]]))
      .with(new Map<string, number | undefined>([['x', undefined]]));
    expect(m.layerSize).toBe(0);
    expect(m.size).toBe(1);
    const same = m.with(new Map<string, number | undefined>([['nope', undefined]]));
    expect(same.size).toBe(1);
    expect([...same]).toEqual([['a', 1]]);
  });
});
