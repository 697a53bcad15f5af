/**
 * The agent's HTTP client (kube-http.ts) against the fake API server over TLS: a kubeconfig's proxy-url (an HTTP
 * CONNECT proxy, as corporate networks and kops' bastions put in front of the API server) carries lists and watches,
 * requests reuse one kept-alive connection, and an aborted request rejects with the abort's reason.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor } from '../../test/fake-apiserver.ts';
import { CutResponseError, GuardedWatch, serverAnswered } from './kube-client.ts';
import { listRaw } from './kube-list.ts';
import { apiUrl, readText, sendRequest } from './kube-http.ts';
import { kubeRequest } from './kube-request.ts';

let api: FakeApiServer;
let proxy: Server;
let connects: string[];
let tunnels: Socket[];
let proxyUrl: string;
beforeEach(async () => {
  api = await FakeApiServer.start();
  connects = [];
  tunnels = [];
  proxy = createHttpServer((_, res) => res.writeHead(405).end());
  // An HTTP CONNECT proxy: a tunnel to whatever host:port the client asks for.
  proxy.on('connect', (req, client: Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    tunnels.push(client, upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});
afterEach(async () => {
  // Tunnels are sockets the HTTP server no longer tracks once CONNECT took them over.
  for (const t of tunnels) t.destroy();
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  await api.close();
});

/** The fake API server's kubeconfig with the cluster behind proxy-url. */
function viaProxy(): KubeConfig {
  const direct = kubeConfigFor(api);
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ ...direct.getCurrentCluster()!, proxyUrl }, direct.getCurrentUser()!);
  return kc;
}

describe('kube-http', () => {
  it('builds the URL of an API path: trailing slashes of the server dropped, undefined query parameters left out', () => {
    expect(
      apiUrl('https://10.0.0.1:6443/', '/api/v1/services', { watch: 'true', labelSelector: '!a', fieldSelector: undefined, limit: 500 }).href,
    ).toBe('https://10.0.0.1:6443/api/v1/services?watch=true&labelSelector=%21a&limit=500');
    expect(apiUrl('https://k8s.example//', '/apis/events.k8s.io/v1/namespaces/default/events').pathname).toBe(
      '/apis/events.k8s.io/v1/namespaces/default/events',
    );
    expect(() => apiUrl('', '/api/v1/nodes')).toThrow();
  });

  it("lists and watches through the kubeconfig's proxy-url (an HTTP CONNECT tunnel to the API server)", async () => {
    api.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.0.0.1' } });
    const kc = viaProxy();
    const list = await listRaw(kc, '/api/v1/services', {}, new AbortController().signal);
    expect(list.items).toHaveLength(1);
    const target = new URL(kc.getCurrentCluster()!.server).host;
    expect(connects).toContain(target);
    const seen: string[] = [];
    const watch = new GuardedWatch(kc, {
      onActivity: () => undefined,
      onDead: (e) => seen.push(`dead ${String(e)}`),
      onProblem: (m) => seen.push(m),
    });
    const got = new Promise<void>((resolve) => {
      void watch.watch(
        '/api/v1/services',
        { resourceVersion: list.metadata.resourceVersion },
        (phase, obj: { metadata: { name: string } }) => {
          seen.push(`${phase} ${obj.metadata.name}`);
          resolve();
        },
        () => undefined,
      );
    });
    await new Promise((r) => setTimeout(r, 200));
    api.create('services', { metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: '10.0.0.2' } });
    await got;
    watch.close();
    expect(seen).toEqual(['ADDED db']);
    expect(connects.length).toBeGreaterThanOrEqual(2);
  });

  it('reuses one kept-alive connection for consecutive requests', async () => {
    const kc = kubeConfigFor(api);
    const sockets = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const res = await sendRequest(kc, { method: 'GET', url: new URL(`${kc.getCurrentCluster()!.server}/api/v1/services`) });
      sockets.add(res.socket);
      await readText(res);
    }
    expect(sockets.size).toBe(1);
  });

  it('a change of TLS credentials (a rotated client certificate, a new CA bundle) gets a new connection, and the old one closes', async () => {
    const kc = kubeConfigFor(api);
    const url = new URL(`${kc.getCurrentCluster()!.server}/api/v1/services`);
    const first = await sendRequest(kc, { method: 'GET', url });
    const firstSocket = first.socket;
    await readText(first);
    const rotated = new KubeConfig();
    const cluster = kc.getCurrentCluster()!;
    // The same CA, written again with a trailing newline: other bytes, the same trust.
    const caData = Buffer.from(`${Buffer.from(cluster.caData!, 'base64').toString()}\n`).toString('base64');
    rotated.loadFromClusterAndUser({ ...cluster, caData }, kc.getCurrentUser()!);
    const second = await sendRequest(rotated, { method: 'GET', url });
    const secondSocket = second.socket;
    await readText(second);
    expect(secondSocket).not.toBe(firstSocket);
    await new Promise((r) => setTimeout(r, 50));
    expect(firstSocket.destroyed).toBe(true);
    expect(secondSocket.destroyed).toBe(false);
  });

  // A proxy that cuts large responses, a server killed mid-list: the server did the list, and a retry makes it do it
  // again (the long back-off); a connection reset before any answer cost it nothing (the short one).
  it('a response cut after its status is an answer (CutResponseError); a connection reset before any answer is not', async () => {
    const cutting = createHttpServer((_, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"kind":"ServiceList","items":[');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((r) => cutting.listen(0, '127.0.0.1', r));
    try {
      const kc = new KubeConfig();
      const server = `http://127.0.0.1:${(cutting.address() as { port: number }).port}`;
      kc.loadFromClusterAndUser({ name: 'c', server, skipTLSVerify: true }, { name: 'u' });
      const cut: unknown = await kubeRequest(kc, { method: 'GET', url: new URL(`${server}/api/v1/services`) }).catch((e: unknown) => e);
      expect(cut).toBeInstanceOf(CutResponseError);
      expect(String(cut)).toBe('CutResponseError: HTTP 200 response cut before its end');
      expect(serverAnswered(cut)).toBe(true);
    } finally {
      cutting.closeAllConnections();
      await new Promise((r) => cutting.close(r));
    }
    api.resetNext('services', 'list');
    const kc = kubeConfigFor(api);
    const reset: unknown = await kubeRequest(kc, { method: 'GET', url: new URL(`${kc.getCurrentCluster()!.server}/api/v1/services`) }).catch(
      (e: unknown) => e,
    );
    expect(reset).not.toBeInstanceOf(CutResponseError);
    expect(serverAnswered(reset)).toBe(false);
  });

  it("rejects an aborted request with the abort's reason (a list's timeout names itself)", async () => {
    const kc = kubeConfigFor(api);
    const ac = new AbortController();
    const pending = sendRequest(kc, {
      method: 'GET',
      url: new URL(`${kc.getCurrentCluster()!.server}/api/v1/services?watch=true`),
      signal: ac.signal,
    }).then((res) => readText(res, ac.signal));
    setTimeout(() => ac.abort(new Error('list timed out after 50 ms')), 50);
    await expect(pending).rejects.toThrow('list timed out after 50 ms');
  });
});
