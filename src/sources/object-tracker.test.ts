/**
 * ObjectTracker: events with previous objects, normalisation, no-op update
 * suppression, client-side filter, and list reconciliation.
 */
import { describe, expect, it } from 'vitest';
import type { ObjectEvent } from './events.ts';
import { ObjectTracker, deepEqual, sameContent } from './object-tracker.ts';

function tracker(accept?: (o: Record<string, unknown>) => boolean) {
  const events: ObjectEvent[] = [];
  const t = new ObjectTracker({ kind: 'Service', apiVersion: 'v1', ...(accept ? { accept } : {}), emit: (e) => events.push(e) });
  const summary = (): string[] => events.map((e) => `${e.type} ${e.key}`);
  return { t, events, summary };
}

const svc = (name: string, rv: string, port = 80, clusterIP = '10.0.0.1') => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, creationTimestamp: new Date('2026-01-02T03:04:05Z') },
  spec: { clusterIP, ports: [{ port }] },
});

describe('ObjectTracker', () => {
  it('emits add, update with the previous object, and delete with the last object downstream saw', () => {
    const { t, events } = tracker();
    t.upsert(svc('a', '1'));
    t.upsert(svc('a', '2', 81));
    t.remove({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '3' } });
    expect(events.map((e) => e.type)).toEqual(['add', 'update', 'delete']);
    expect(events[1]).toMatchObject({ key: 'ns/a', old: { metadata: { resourceVersion: '1' } }, obj: { metadata: { resourceVersion: '2' } } });
    expect(events[2]).toMatchObject({ old: { metadata: { resourceVersion: '2' }, spec: { ports: [{ port: 81 }] } }, obj: null });
    expect(t.size).toBe(0);
  });

  it('normalises to plain JSON with kind and apiVersion, keeping the fields the agent reads', () => {
    const { t, events } = tracker();
    t.upsert(svc('a', '1'));
    expect(events[0]!.obj).toEqual({
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' },
      spec: { clusterIP: '10.0.0.1', ports: [{ port: 80 }] },
    });
  });

  it('keeps an already-retained object as it is (one copy shared with the informer cache), and copies otherwise', () => {
    const retained = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' }, spec: { clusterIP: '10.0.0.1', ports: [{ port: 80 }] } };
    const shared: ObjectEvent[] = [];
    new ObjectTracker({ kind: 'Service', apiVersion: 'v1', retained: true, emit: (e) => shared.push(e) }).upsert(retained);
    expect(shared[0]!.obj).toEqual({ ...retained, kind: 'Service', apiVersion: 'v1' });
    expect((shared[0]!.obj as Record<string, unknown>)['spec']).toBe(retained.spec);
    expect((shared[0]!.obj as Record<string, unknown>)['metadata']).toBe(retained.metadata);
    const { t, events } = tracker();
    t.upsert(retained);
    expect(events[0]!.obj).toEqual(shared[0]!.obj);
    expect((events[0]!.obj as Record<string, unknown>)['spec']).not.toBe(retained.spec);
  });

  it('drops updates with the same resourceVersion or the same content, but remembers the newest object', () => {
    const { t, summary, events } = tracker();
    t.upsert(svc('a', '1'));
    t.upsert(svc('a', '1', 99));
    t.upsert(svc('a', '2'));
    t.upsert(svc('a', '3', 81));
    expect(summary()).toEqual(['add ns/a', 'update ns/a']);
    expect(events[1]!.old).toMatchObject({ metadata: { resourceVersion: '2' } });
  });

  it('ignores deletes of unknown objects and objects without a name', () => {
    const { t, summary } = tracker();
    t.remove({ metadata: { name: 'nope', namespace: 'ns' } });
    t.upsert({ metadata: {} });
    t.upsert(null);
    expect(summary()).toEqual([]);
  });

  it('treats objects the filter rejects as absent, deleting one that stops passing', () => {
    const { t, summary } = tracker((o) => (o['spec'] as { clusterIP: string }).clusterIP !== 'None');
    t.upsert(svc('headless', '1', 80, 'None'));
    t.upsert(svc('a', '2'));
    t.upsert(svc('a', '3', 80, 'None'));
    expect(summary()).toEqual(['add ns/a', 'delete ns/a']);
  });

  it('reconciles a list: deletes for vanished objects first, then adds and real updates only', () => {
    const { t, summary } = tracker();
    t.reconcile([svc('a', '1'), svc('b', '2'), svc('c', '3')]);
    t.reconcile([svc('b', '2'), svc('c', '9', 443), svc('d', '10')]);
    expect(summary()).toEqual(['add ns/a', 'add ns/b', 'add ns/c', 'delete ns/a', 'update ns/c', 'add ns/d']);
    expect(t.keys().sort()).toEqual(['ns/b', 'ns/c', 'ns/d']);
  });
});

describe('deepEqual / sameContent', () => {
  it('compares structurally, ignoring key order, and sameContent ignores only the resourceVersion', () => {
    expect(deepEqual({ a: [1, { b: 2 }], c: null }, { c: null, a: [1, { b: 2 }] })).toBe(true);
    expect(deepEqual({ a: [1] }, { a: { 0: 1 } })).toBe(false);
    expect(deepEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameContent({ metadata: { name: 'a', resourceVersion: '1' } }, { metadata: { name: 'a', resourceVersion: '2' } })).toBe(true);
    expect(sameContent({ metadata: { name: 'a', uid: '1' } }, { metadata: { name: 'a', uid: '2' } })).toBe(false);
  });
});
