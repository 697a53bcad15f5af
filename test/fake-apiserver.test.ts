/**
 * The fake API server's wire format, checked with its own fetch (node:https
 * trusting its CA, with a token): lists, NDJSON watches, selectors, expiry,
 * bookmarks, failures, down/up; and once with the real client-node ListWatch.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, ListWatch, Watch, type V1Service } from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor } from './fake-apiserver.ts';

interface WatchEvent {
  type: string;
  object: { kind?: string; apiVersion?: string; code?: number; reason?: string; metadata: { name?: string; resourceVersion?: string } };
}

/** Reads NDJSON watch events one by one; ended() resolves when the server closes the stream. */
async function openWatch(on: FakeApiServer, path: string) {
  const resp = await on.fetch(path);
  const reader = resp.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (timeoutMs = 2000): Promise<WatchEvent | null> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        return JSON.parse(line) as WatchEvent;
      }
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no watch event in time')), Math.max(1, deadline - Date.now()))),
      ]);
      if (chunk.done) return null;
      buffer += decoder.decode(chunk.value, { stream: true });
    }
  };
  return { resp, next, close: () => void reader.cancel().catch(() => {}) };
}

const svc = (name: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: 'default' },
  spec: { clusterIP: '10.0.0.1' },
  ...extra,
});

let server: FakeApiServer;
beforeEach(async () => {
  server = await FakeApiServer.start();
});
afterEach(async () => {
  await server.close();
});

describe('list', () => {
  it('answers a List with the resourceVersion and items without kind/apiVersion, like a real apiserver', async () => {
    const created = server.create('services', svc('a'));
    server.create('services', { metadata: { name: 'b', namespace: 'kube-system' }, spec: {} });
    const resp = await server.fetch(`/api/v1/services`);
    expect(resp.status).toBe(200);
    expect(resp.headers.get('content-type')).toBe('application/json');
    const body = (await resp.json()) as {
      kind: string;
      apiVersion: string;
      metadata: { resourceVersion: string };
      items: Array<Record<string, unknown>>;
    };
    expect(body.kind).toBe('ServiceList');
    expect(body.apiVersion).toBe('v1');
    expect(body.metadata.resourceVersion).toBe(String(server.resourceVersion));
    expect(body.items.map((i) => (i['metadata'] as { name: string }).name)).toEqual(['a', 'b']);
    expect(body.items[0]).not.toHaveProperty('kind');
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const ns = (await (await server.fetch(`/api/v1/namespaces/kube-system/services`)).json()) as { items: unknown[] };
    expect(ns.items).toHaveLength(1);
    const slices = (await (await server.fetch(`/apis/discovery.k8s.io/v1/endpointslices`)).json()) as { kind: string; apiVersion: string };
    expect([slices.kind, slices.apiVersion]).toEqual(['EndpointSliceList', 'discovery.k8s.io/v1']);
  });

  it('answers each resourceVersion as the watch cache and etcd do (cacher shouldDelegateList, computeListLimit)', async () => {
    for (const n of ['a', 'b', 'c']) server.create('services', svc(n));
    const first = server.resourceVersion;
    server.update('services', svc('a', { spec: { clusterIP: '10.0.0.2' } }));
    const list = async (query: string) => {
      const resp = await server.fetch(`/api/v1/services?${query}`);
      const body = (await resp.json()) as { metadata: Record<string, unknown>; items: unknown[]; details?: unknown; message?: string };
      return {
        status: resp.status,
        retryAfter: resp.headers.get('retry-after'),
        rv: body.metadata?.['resourceVersion'],
        n: body.items?.length,
        more: !!body.metadata?.['continue'],
        body,
      };
    };
    // "0": the watch cache ignores the limit; without one (--watch-cache=false), pages.
    expect(await list('resourceVersion=0&limit=2')).toMatchObject({ status: 200, n: 3, more: false, rv: String(server.resourceVersion) });
    server.watchCache = false;
    expect(await list('resourceVersion=0&limit=2')).toMatchObject({ status: 200, n: 2, more: true });
    server.watchCache = true;
    // N without a limit: not older than N, the current state; past the current one: 504 with cause ResourceVersionTooLarge.
    expect(await list(`resourceVersion=${first}`)).toMatchObject({ status: 200, rv: String(server.resourceVersion) });
    const ahead = await list(`resourceVersion=${server.resourceVersion + 5}`);
    expect(ahead).toMatchObject({ status: 504, retryAfter: '1' });
    expect(ahead.body).toMatchObject({ reason: 'Timeout', details: { causes: [{ reason: 'ResourceVersionTooLarge' }] } });
    // N with a limit: exactly N (from etcd), 410 once compacted; a resourceVersion beside a continue token is refused.
    const exact = await list(`resourceVersion=${first}&limit=2`);
    expect(exact).toMatchObject({ status: 200, rv: String(first), more: true });
    const token = (exact.body.metadata as { continue: string }).continue;
    expect((await list(`resourceVersion=${first}&limit=2&continue=${token}`)).status).toBe(400);
    expect(await list(`limit=2&continue=${token}`)).toMatchObject({ status: 200, n: 1, rv: String(first) });
    server.compact();
    expect(await list(`resourceVersion=${first}&limit=2`)).toMatchObject({ status: 410 });
  });

  it('applies label and field selectors, and refuses unsupported ones with 400', async () => {
    server.create('services', svc('plain'));
    server.create('services', svc('headless', { spec: { clusterIP: 'None' } }));
    server.create('services', {
      ...svc('proxied'),
      metadata: { name: 'proxied', labels: { 'service.kubernetes.io/service-proxy-name': 'other', app: 'x' } },
    });
    server.create('services', { ...svc('app-y'), metadata: { name: 'app-y', labels: { app: 'y' } } });
    const names = async (q: string): Promise<string[]> => {
      const body = (await (await server.fetch(`/api/v1/services?${q}`)).json()) as { items: Array<{ metadata: { name: string } }> };
      return body.items.map((i) => i.metadata.name);
    };
    expect(await names(`labelSelector=${encodeURIComponent('!service.kubernetes.io/service-proxy-name')}`)).toEqual(['app-y', 'headless', 'plain']);
    expect(await names('labelSelector=app')).toEqual(['app-y', 'proxied']);
    expect(await names('labelSelector=app%3Dx')).toEqual(['proxied']);
    expect(await names('labelSelector=app%21%3Dx')).toEqual(['app-y', 'headless', 'plain']);
    expect(await names(`fieldSelector=${encodeURIComponent('spec.clusterIP!=None')}`)).toEqual(['app-y', 'plain', 'proxied']);
    expect(await names('fieldSelector=metadata.name%3Dplain')).toEqual(['plain']);
    const bad = await server.fetch(`/api/v1/services?fieldSelector=spec.foo%3Dx`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe('field label not supported: spec.foo');
  });

  it('rejects the spec.clusterIP field selector when emulating an apiserver before 1.31', async () => {
    const old = await FakeApiServer.start({ legacyServiceFields: true });
    try {
      expect((await old.fetch(`/api/v1/services?fieldSelector=spec.clusterIP%21%3DNone`)).status).toBe(400);
      expect((await old.fetch(`/api/v1/services?labelSelector=%21a`)).status).toBe(200);
    } finally {
      await old.close();
    }
  });

  it('fails the next requests as told with a Status body, then recovers', async () => {
    server.failNext('services', 'list', 503, 2);
    for (let i = 0; i < 2; i++) {
      const resp = await server.fetch(`/api/v1/services`);
      expect(resp.status).toBe(503);
      expect(await resp.json()).toMatchObject({ kind: 'Status', code: 503, reason: 'ServiceUnavailable' });
    }
    expect((await server.fetch(`/api/v1/services`)).status).toBe(200);
    expect((await server.fetch(`/api/v1/pods`)).status).toBe(404);
  });
});

describe('watch', () => {
  it('replays changes after the resourceVersion, then streams new ones with kind/apiVersion', async () => {
    const start = server.resourceVersion;
    server.create('services', svc('a'));
    const w = await openWatch(server, `/api/v1/services?watch=true&resourceVersion=${start}`);
    try {
      expect(w.resp.headers.get('content-type')).toBe('application/json');
      expect(await w.next()).toMatchObject({ type: 'ADDED', object: { kind: 'Service', apiVersion: 'v1', metadata: { name: 'a' } } });
      await server.until(() => server.watchCount('services') === 1, 'the watch to register');
      server.update('services', svc('a', { spec: { clusterIP: '10.0.0.9' } }));
      server.delete('services', 'default/a');
      expect(await w.next()).toMatchObject({ type: 'MODIFIED', object: { spec: { clusterIP: '10.0.0.9' } } });
      const del = await w.next();
      expect(del).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: String(server.resourceVersion) } } });
    } finally {
      w.close();
    }
  });

  it('serves ServiceCIDRs in the versions a release serves: v1beta1 only as 1.31-1.32 do, in its own apiVersion', async () => {
    server.serviceCIDRVersions = ['networking.k8s.io/v1beta1'];
    const start = server.resourceVersion;
    server.create('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
    expect((await server.fetch('/apis/networking.k8s.io/v1/servicecidrs')).status).toBe(404);
    const list = (await (await server.fetch('/apis/networking.k8s.io/v1beta1/servicecidrs')).json()) as { apiVersion: string; items: unknown[] };
    expect([list.apiVersion, list.items.length]).toEqual(['networking.k8s.io/v1beta1', 1]);
    const w = await openWatch(server, `/apis/networking.k8s.io/v1beta1/servicecidrs?watch=true&resourceVersion=${start}`);
    try {
      expect(await w.next()).toMatchObject({ type: 'ADDED', object: { kind: 'ServiceCIDR', apiVersion: 'networking.k8s.io/v1beta1' } });
    } finally {
      w.close();
    }
  });

  it('turns selector transitions into ADDED and DELETED, as the watch cache does', async () => {
    server.create('services', svc('a'));
    const w = await openWatch(server, `/api/v1/services?watch=true&resourceVersion=${server.resourceVersion}&labelSelector=%21skip`);
    try {
      await server.until(() => server.watchCount() === 1, 'the watch to register');
      server.update('services', { ...svc('a'), metadata: { name: 'a', labels: { skip: '' } } });
      const gone = await w.next();
      expect(gone).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: String(server.resourceVersion) } } });
      expect(gone!.object).not.toHaveProperty('metadata.labels');
      server.update('services', svc('a'));
      expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a' } } });
    } finally {
      w.close();
    }
  });

  it('answers an expired resourceVersion with an in-stream 410 ERROR and closes, or with HTTP 410 if told', async () => {
    server.create('services', svc('a'));
    server.compact();
    const w = await openWatch(server, `/api/v1/services?watch=true&resourceVersion=1`);
    expect(w.resp.status).toBe(200);
    expect(await w.next()).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    expect(await w.next()).toBeNull();
    server.expiredWatch = 'http';
    const resp = await server.fetch(`/api/v1/services?watch=true&resourceVersion=1`);
    expect(resp.status).toBe(410);
    expect(await resp.json()).toMatchObject({ kind: 'Status', code: 410 });
    const current = await openWatch(server, `/api/v1/services?watch=true&resourceVersion=${server.resourceVersion}`);
    expect(current.resp.status).toBe(200);
    current.close();
  });

  it('sends bookmarks only to watches that asked, and dropWatches ends streams cleanly', async () => {
    const plain = await openWatch(server, `/api/v1/nodes?watch=true&resourceVersion=1`);
    const asked = await openWatch(server, `/api/v1/nodes?watch=true&resourceVersion=1&allowWatchBookmarks=true`);
    await server.until(() => server.watchCount('nodes') === 2, 'two watches');
    server.create('services', svc('other'));
    server.bookmark();
    expect(await asked.next()).toEqual({
      type: 'BOOKMARK',
      object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(server.resourceVersion) } },
    });
    server.dropWatches();
    expect(server.watchCount()).toBe(0);
    expect(await asked.next()).toBeNull();
    expect(await plain.next()).toBeNull();
  });

  it('refuses connections while down and serves the same port after up', async () => {
    const w = await openWatch(server, `/api/v1/nodes?watch=true&resourceVersion=1`);
    await server.down();
    await expect(w.next()).rejects.toThrow();
    await expect(server.fetch(`/api/v1/nodes`)).rejects.toThrow(/ECONNREFUSED/);
    await server.up();
    expect((await server.fetch(`/api/v1/nodes`)).status).toBe(200);
  });
});

describe('with the real client-node ListWatch', () => {
  it('lists, watches with the selectors it was given, and relists after an in-stream 410', async () => {
    server.create('services', svc('a'));
    const kc = kubeConfigFor(server);
    const core = kc.makeApiClient(CoreV1Api);
    const seen: string[] = [];
    const lw = new ListWatch<V1Service>(
      '/api/v1/services',
      new Watch(kc),
      () => core.listServiceForAllNamespaces({ labelSelector: '!x' }),
      false,
      '!x',
      undefined,
      {
        delayFn: async () => {},
      },
    );
    lw.on('add', (o) => seen.push(`add ${o.metadata!.name}`));
    lw.on('delete', (o) => seen.push(`delete ${o.metadata!.name}`));
    try {
      await lw.start();
      expect(seen).toEqual(['add a']);
      const watch = server.requests({ verb: 'watch' });
      expect(watch).toHaveLength(1);
      expect(watch[0]!.query).toEqual({ watch: 'true', resourceVersion: String(server.resourceVersion), labelSelector: '!x' });
      expect(watch[0]!.authorization).toBe('Bearer fake-token');
      server.dropWatches();
      server.delete('services', 'default/a');
      server.create('services', svc('b'));
      server.compact();
      await server.until(() => server.requests({ verb: 'list' }).length === 2, 'the relist after 410');
      await server.until(() => server.watchCount() === 1, 'the new watch');
      expect(seen).toEqual(['add a', 'delete a', 'add b']);
    } finally {
      await lw.stop();
    }
  });
});
