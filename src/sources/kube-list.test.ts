/**
 * listRaw against the fake API server: raw JSON lists with authentication
 * and API errors, pages of 500 as client-go's pager (10,000 Services in 20
 * pages), the fall-back to one full list when a continue token expired, and
 * every request reported for the rest_client metrics (transport failures as
 * "<error>", an untrusted certificate named).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiException } from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor } from '../../test/fake-apiserver.ts';
import { makeTestPki } from '../../test/fake-apiserver-tls.ts';
import { tlsProblem, type RequestRecord } from './kube-client.ts';
import { LIST_PAGE_SIZE, listRaw } from './kube-list.ts';

let server: FakeApiServer;
let rejections: unknown[];
const onRejection = (reason: unknown): void => void rejections.push(reason);
beforeEach(async () => {
  server = await FakeApiServer.start();
  rejections = [];
  process.on('unhandledRejection', onRejection);
});
afterEach(async () => {
  await server.close();
  process.off('unhandledRejection', onRejection);
  expect(rejections).toEqual([]);
});

describe('listRaw', () => {
  it('returns the server JSON untouched (unknown fields kept, timestamps as strings), authenticated, with the query', async () => {
    server.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.0.0.1', futureField: { x: 1 } } });
    const list = await listRaw(
      kubeConfigFor(server),
      '/api/v1/services',
      { labelSelector: '!a', fieldSelector: undefined },
      new AbortController().signal,
    );
    expect(list.metadata.resourceVersion).toBe(String(server.resourceVersion));
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ spec: { futureField: { x: 1 } }, metadata: { creationTimestamp: expect.any(String) } });
    expect(server.requests()[0]).toMatchObject({ query: { labelSelector: '!a' }, authorization: 'Bearer fake-token' });
  });

  it('throws an ApiException with the status code and the Status message', async () => {
    server.failNext('nodes', 'list', 503);
    const err = await listRaw(kubeConfigFor(server), '/api/v1/nodes', {}, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(503);
    expect((err as Error).message).toContain('injected failure for list nodes');
  });

  it('can be aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(listRaw(kubeConfigFor(server), '/api/v1/nodes', {}, ac.signal)).rejects.toThrow('stop now');
  });
});

describe('listRaw pages as client-go does', () => {
  it('lists 10,000 Services in 20 pages of 500 (upstream pager.defaultPageSize), none of them a multi-megabyte response', async () => {
    for (let i = 0; i < 10_000; i++) {
      server.create('services', {
        metadata: { name: `svc-${String(i).padStart(5, '0')}`, namespace: `ns-${i % 50}`, labels: { app: `app-${i}` } },
        spec: { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
      });
    }
    const observed: RequestRecord[] = [];
    const list = await listRaw(
      kubeConfigFor(server),
      '/api/v1/services',
      { labelSelector: '!service.kubernetes.io/headless' },
      new AbortController().signal,
      { observe: (r) => observed.push(r) },
    );
    expect(list.items).toHaveLength(10_000);
    expect(new Set(list.items.map((o) => (o as { metadata: { name: string } }).metadata.name)).size).toBe(10_000);
    expect(list.metadata.resourceVersion).toBe(String(server.resourceVersion));
    const pages = server.requests({ resource: 'services', verb: 'list' });
    expect(LIST_PAGE_SIZE).toBe(500);
    expect(pages).toHaveLength(20);
    expect(pages.every((p) => p.query['limit'] === '500' && p.query['labelSelector'] === '!service.kubernetes.io/headless')).toBe(true);
    expect(pages.slice(1).every((p) => p.query['continue'])).toBe(true);
    const sizes = pages.map((p) => p.bytes!);
    const total = sizes.reduce((a, b) => a + b, 0);
    console.log(`10,000 Services: ${pages.length} pages, largest ${(Math.max(...sizes) / 1e6).toFixed(2)} MB, total ${(total / 1e6).toFixed(2)} MB`);
    expect(Math.max(...sizes)).toBeLessThan(total / 10);
    expect(observed).toHaveLength(20);
    expect(observed.every((r) => r.method === 'GET' && r.code === '200' && r.host === `127.0.0.1:${server.port}` && r.seconds! >= 0)).toBe(true);
  }, 30_000);

  it('keeps what `keep` returns of each item as its page arrives, before the next page is asked for', async () => {
    for (let i = 0; i < 5; i++) server.create('services', { metadata: { name: `svc-${i}`, namespace: 'ns', managedFields: [{ manager: 'x' }] } });
    const pagesAt: number[] = []; // list requests the server had seen when each item was kept
    const list = await listRaw(kubeConfigFor(server), '/api/v1/services', {}, new AbortController().signal, {
      pageSize: 2,
      keep: (item) => {
        pagesAt.push(server.requests({ resource: 'services', verb: 'list' }).length);
        return (item as { metadata: { name: string } }).metadata.name;
      },
    });
    expect(list.items).toEqual(['svc-0', 'svc-1', 'svc-2', 'svc-3', 'svc-4']);
    expect(pagesAt).toEqual([1, 1, 2, 2, 3]);
  });

  it('falls back to one full list when the continue token expired mid-list (upstream ListPager FullListIfExpired)', async () => {
    for (const n of ['a', 'b', 'c']) server.create('nodes', { metadata: { name: n } });
    let pages = 0;
    const list = await listRaw(kubeConfigFor(server), '/api/v1/nodes', {}, new AbortController().signal, {
      pageSize: 2,
      observe: () => {
        if (++pages === 1) {
          server.create('nodes', { metadata: { name: 'd' } });
          server.compact();
        }
      },
    });
    expect(list.items.map((o) => (o as { metadata: { name: string } }).metadata.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(server.requests({ verb: 'list' }).map((r) => [r.query['limit'] ?? '', r.status])).toEqual([
      ['2', 200],
      ['2', 410],
      ['', 200],
    ]);
  });

  it('reports transport failures as "<error>" and names an untrusted certificate and the CA it was checked against', async () => {
    const wrong = makeTestPki([], 'not-the-cluster-ca');
    const kc = kubeConfigFor({ url: server.url, pki: wrong });
    const observed: RequestRecord[] = [];
    const err = await listRaw(kc, '/api/v1/nodes', {}, new AbortController().signal, { observe: (r) => observed.push(r) }).catch((e: unknown) => e);
    expect(observed.map((r) => r.code)).toEqual(['<error>']);
    expect(tlsProblem(err, kc)).toMatch(
      /^TLS: the API server https:\/\/127\.0\.0\.1:\d+ presented a certificate that the certificate-authority-data of the kubeconfig does not trust: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/,
    );
    expect(tlsProblem(new Error('ECONNREFUSED'), kc)).toBeNull();
    expect(server.requests()).toHaveLength(0);
  });
});
