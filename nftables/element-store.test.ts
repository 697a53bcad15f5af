import { describe, expect, it } from 'vitest';
import { buildStore, ElementChanges } from './element-store.ts';
import type { NftElement } from './model.ts';

const el = (key: string, value: string | null = null, comment: string | null = null): NftElement => ({ key, value, comment });
const at = (set: string, element: NftElement) => ({ set, element });

describe('element store (upstream nftElementStorage, incremental)', () => {
  it('keeps a key while any service port still wants it (one ClusterIP, several ports)', () => {
    const p80 = [at('cluster-ips', el('172.30.0.41'))];
    const p81 = [at('cluster-ips', el('172.30.0.41'))];
    const store = buildStore(['cluster-ips'], [...p80, ...p81]);
    expect(store.get('cluster-ips')!.get('172.30.0.41')!.refs).toBe(2);
    const c = new ElementChanges(store);
    c.replace(p81, []);
    expect(c.operations()).toEqual({ deletes: [], adds: [] });
    const after = c.result(['cluster-ips']);
    expect(after.get('cluster-ips')!.get('172.30.0.41')!.refs).toBe(1);
    const d = new ElementChanges(after);
    d.replace(p80, []);
    expect(d.operations()).toEqual({ deletes: [['cluster-ips', '172.30.0.41']], adds: [] });
  });

  it('replaces a changed value or comment with delete + add, and leaves the base store untouched', () => {
    const before = [at('service-ips', el('1.2.3.4 . tcp . 80', 'goto service-A'))];
    const store = buildStore(['service-ips'], before);
    const c = new ElementChanges(store);
    c.replace(before, [at('service-ips', el('1.2.3.4 . tcp . 80', 'goto external-A'))]);
    expect(c.operations()).toEqual({
      deletes: [['service-ips', '1.2.3.4 . tcp . 80']],
      adds: [['service-ips', el('1.2.3.4 . tcp . 80', 'goto external-A')]],
    });
    expect(store.get('service-ips')!.get('1.2.3.4 . tcp . 80')!.element.value).toBe('goto service-A');
    const comment = new ElementChanges(store);
    comment.replace(before, [at('service-ips', el('1.2.3.4 . tcp . 80', 'goto service-A', 'ns/a:p'))]);
    expect(comment.operations().deletes).toHaveLength(1);
  });

  it('sends nothing for a key that moves from one port to another with the same value', () => {
    const a = [at('no-endpoint-nodeports', el('tcp . 3001', 'drop', 'ns/s:p'))];
    const store = buildStore(['no-endpoint-nodeports'], a);
    const c = new ElementChanges(store);
    c.replace(a, []);
    c.replace([], a);
    expect(c.operations()).toEqual({ deletes: [], adds: [] });
  });

  it('shares untouched sets with the base (no copy per sync)', () => {
    const store = buildStore(['a', 'b'], [at('a', el('1.1.1.1')), at('b', el('2.2.2.2'))]);
    const c = new ElementChanges(store);
    c.replace([], [at('a', el('3.3.3.3'))]);
    const r = c.result(['a', 'b']);
    expect(r.get('b')).toBe(store.get('b'));
    expect(r.get('a')).not.toBe(store.get('a'));
  });

  it("drops a deleted set's elements without element operations, and fills a re-created one", () => {
    const store = buildStore(['nodeport-ips'], [at('nodeport-ips', el('192.168.0.2'))]);
    const c = new ElementChanges(store);
    c.dropSet('nodeport-ips');
    c.replace([at('nodeport-ips', el('192.168.0.2'))], [at('nodeport-ips', el('192.168.0.2'))]);
    // Same element before and after, but the set is re-created: it must be added again, not deleted.
    expect(c.operations()).toEqual({ deletes: [], adds: [['nodeport-ips', el('192.168.0.2')]] });
    const gone = new ElementChanges(store);
    gone.dropSet('nodeport-ips');
    gone.replace([at('nodeport-ips', el('192.168.0.2'))], []);
    expect(gone.operations()).toEqual({ deletes: [], adds: [] });
  });

  it('refuses an element for a set it does not know', () => {
    expect(() => buildStore(['a'], [at('b', el('1.1.1.1'))])).toThrow(/unknown set b/);
  });
});
