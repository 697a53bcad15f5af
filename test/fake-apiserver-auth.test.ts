/**
 * What the fake API server adds to the wire format to be a real one: HTTPS
 * with a CA made at test time, client certificates its CA signed and bearer
 * tokens (401 otherwise, rotation), paged
 * lists from a consistent snapshot (limit/continue, 410 once compacted), and
 * the same server reachable through a unix socket.
 */
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from './fake-apiserver.ts';
import { makeClientCert, makeTestPki } from './fake-apiserver-tls.ts';

const svc = (name: string, ns = 'default') => ({ metadata: { name, namespace: ns }, spec: { clusterIP: '10.0.0.1' } });

interface Page {
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: Array<{ metadata: { name: string; namespace: string } }>;
}

let server: FakeApiServer;
beforeEach(async () => {
  server = await FakeApiServer.start();
});
afterEach(async () => {
  await server.close();
});

describe('TLS and authentication', () => {
  it('serves HTTPS only with a certificate from its own CA: a client trusting another CA is refused at the handshake', async () => {
    const other = makeTestPki([], 'another-ca');
    const err = await new Promise<Error>((resolve) => {
      const req = httpsRequest(`${server.url}/api/v1/nodes`, { ca: other.caPem }, () => resolve(new Error('answered')));
      req.on('error', resolve);
      req.end();
    });
    expect(err.message).toMatch(/self-signed certificate in certificate chain|unable to verify/);
    expect((await server.fetch('/api/v1/nodes')).status).toBe(200);
  });

  it('answers 401 with an Unauthorized Status without a token or with one it does not accept, as a real apiserver', async () => {
    for (const token of [null, 'wrong']) {
      const resp = await server.fetch('/api/v1/services', { token });
      expect(resp.status).toBe(401);
      expect(await resp.json()).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      });
    }
    expect(server.requests().map((r) => r.status)).toEqual([401, 401]);
  });

  it("authenticates a client certificate its CA signed as its CN (kube-apiserver's x509 authenticator); expired, not yet valid or another CA's: 401", async () => {
    const pki = server.pki;
    const good = makeClientCert(pki, { cn: 'system:kube-proxy' });
    const day = 86_400_000;
    const expired = makeClientCert(pki, {
      cn: 'system:kube-proxy',
      notBefore: new Date(Date.now() - 400 * day),
      notAfter: new Date(Date.now() - day),
    });
    const early = makeClientCert(pki, { cn: 'system:kube-proxy', notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 2 * day) });
    const foreign = makeClientCert(makeTestPki([], 'another-ca'), { cn: 'system:kube-proxy' });
    expect(Date.parse(new X509Certificate(expired.certPem).validTo)).toBeLessThan(Date.now());
    expect((await server.fetch('/api/v1/nodes', { token: null, cert: good })).status).toBe(200);
    for (const cert of [expired, early, foreign]) expect((await server.fetch('/api/v1/nodes', { token: null, cert })).status).toBe(401);
    // A refused certificate is not a user, but the request may still carry an accepted token (the union of authenticators).
    expect((await server.fetch('/api/v1/nodes', { cert: expired })).status).toBe(200);
    expect(server.requests().map((r) => r.user)).toEqual(['x509:system:kube-proxy', null, null, null, 'token:fake-token']);
  });

  it('rotates tokens: the old one is refused from then on, the new one accepted', async () => {
    expect((await server.fetch('/api/v1/nodes', { token: 'fake-token' })).status).toBe(200);
    server.setTokens(['rotated']);
    expect((await server.fetch('/api/v1/nodes', { token: 'fake-token' })).status).toBe(401);
    expect((await server.fetch('/api/v1/nodes', { token: 'rotated' })).status).toBe(200);
  });
});

describe('paginated lists (limit/continue, client-go pages by 500)', () => {
  const page = async (q: string): Promise<Page> => (await (await server.fetch(`/api/v1/services?${q}`)).json()) as Page;

  it('pages in key order and every page comes from the snapshot of the first, even when objects change in between', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) server.create('services', svc(n));
    const first = await page('limit=2');
    expect(first.items.map((i) => i.metadata.name)).toEqual(['a', 'b']);
    expect(first.metadata.remainingItemCount).toBe(3);
    const rv = first.metadata.resourceVersion;
    server.delete('services', 'default/c');
    server.create('services', svc('bb'));
    server.update('services', { ...svc('d'), spec: { clusterIP: '10.0.0.99' } });
    const second = await page(`limit=2&continue=${first.metadata.continue}`);
    expect(second.metadata.resourceVersion).toBe(rv);
    expect(second.items.map((i) => i.metadata.name)).toEqual(['c', 'd']);
    expect(second.items[1]).toMatchObject({ spec: { clusterIP: '10.0.0.1' } });
    const last = await page(`limit=2&continue=${second.metadata.continue}`);
    expect(last.items.map((i) => i.metadata.name)).toEqual(['e']);
    expect(last.metadata.continue).toBeUndefined();
    expect((await page('')).items.map((i) => i.metadata.name)).toEqual(['a', 'b', 'bb', 'd', 'e']);
  });

  it('fills pages after applying the selectors and gives no remainingItemCount for a selected list', async () => {
    for (let i = 0; i < 6; i++)
      server.create('services', { ...svc(`s${i}`), metadata: { name: `s${i}`, namespace: 'default', labels: i % 2 ? { odd: '' } : {} } });
    const first = await page('limit=2&labelSelector=odd');
    expect(first.items.map((i) => i.metadata.name)).toEqual(['s1', 's3']);
    expect(first.metadata.remainingItemCount).toBeUndefined();
    const rest = await page(`limit=2&labelSelector=odd&continue=${first.metadata.continue}`);
    expect(rest.items.map((i) => i.metadata.name)).toEqual(['s5']);
  });

  it('refuses a continue token whose resourceVersion was compacted with 410 Expired, and a forged one with 400', async () => {
    for (const n of ['a', 'b', 'c']) server.create('services', svc(n));
    const first = await page('limit=1');
    server.create('services', svc('z'));
    server.compact();
    const expired = await server.fetch(`/api/v1/services?limit=1&continue=${first.metadata.continue}`);
    expect(expired.status).toBe(410);
    expect(await expired.json()).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    expect((await server.fetch('/api/v1/services?limit=1&continue=bm9wZQ')).status).toBe(400);
  });
});

describe('unix socket', () => {
  it('serves the same API, TLS included, on a unix socket that survives down/up', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-unix-'));
    try {
      await server.listenUnix(join(dir, 'api.sock'));
      server.create('nodes', { metadata: { name: 'node-1' } });
      const get = () =>
        new Promise<number>((resolve, reject) => {
          const req = httpsRequest(
            {
              agent: false,
              socketPath: join(dir, 'api.sock'),
              path: '/api/v1/nodes',
              ca: server.pki.caPem,
              servername: 'localhost',
              headers: { Authorization: 'Bearer fake-token' },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect(await get()).toBe(200);
      await server.down();
      await expect(get()).rejects.toThrow(/ENOENT|ECONNREFUSED/);
      await server.up();
      expect(await get()).toBe(200);
      // TLS all the way: a plain TLS client sees the fake's certificate.
      const sock = connect({ path: join(dir, 'api.sock'), ca: server.pki.caPem, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
      expect(sock.getPeerCertificate().subject.CN).toBe('kube-apiserver');
      sock.destroy();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
