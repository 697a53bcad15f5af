import { afterEach, describe, expect, it } from 'vitest';
import { ServiceHealthServers, serviceHealthHosts } from './service-health.ts';
import { nodeInfo, portState, servicePort, snapshotOf } from '../../test/domain.ts';
import type { Snapshot } from '../../proxier/types.ts';
import { hasIPv6Loopback } from '../../test/ipv6-loopback.ts';
import { freePort } from '../../test/free-port.ts';

describe('ServiceHealthServers', () => {
  let s: ServiceHealthServers | null = null;
  afterEach(async () => s?.close());

  it('answers 200 with local endpoints, 503 without, and follows port changes', async () => {
    let healthy = true;
    s = new ServiceHealthServers({ hosts: ['127.0.0.1'], proxyHealthy: () => healthy });
    // Port 0 is not what upstream does, but ephemeral ports keep the test independent of the machine.
    const probe = await import('node:net').then(
      ({ createServer }) =>
        new Promise<number>((resolve) => {
          const srv = createServer().listen(0, '127.0.0.1', () => {
            const port = (srv.address() as { port: number }).port;
            srv.close(() => resolve(port));
          });
        }),
    );
    const target = { namespace: 'ns1', name: 'web', port: probe, localEndpoints: 2 };
    await s.sync(new Map([['ns1/web', target]]));
    let r = await fetch(`http://127.0.0.1:${probe}/anything`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({ service: { namespace: 'ns1', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });

    await s.sync(new Map([['ns1/web', { ...target, localEndpoints: 0 }]]));
    r = await fetch(`http://127.0.0.1:${probe}/`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ localEndpoints: 0 });

    await s.sync(new Map([['ns1/web', target]]));
    healthy = false;
    expect((await fetch(`http://127.0.0.1:${probe}/`)).status).toBe(503);

    await s.sync(new Map());
    expect(s.ports().size).toBe(0);
    await expect(fetch(`http://127.0.0.1:${probe}/`)).rejects.toThrow();
  });

  it("answers as upstream's hcHandler.ServeHTTP: X-Load-Balancing-Endpoint-Weight with the local endpoint count, and its indented body", async () => {
    s = new ServiceHealthServers({ hosts: ['127.0.0.1'], proxyHealthy: () => true });
    const port = await freePort();
    await s.sync(new Map([['ns1/web', { namespace: 'ns1', name: 'web', port, localEndpoints: 3 }]]));
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect([r.status, r.headers.get('x-load-balancing-endpoint-weight'), r.headers.get('x-content-type-options')]).toEqual([200, '3', 'nosniff']);
    expect(await r.text()).toBe(
      '{\n\t"service": {\n\t\t"namespace": "ns1",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 3,\n\t"serviceProxyHealthy": true\n}',
    );
    await s.sync(new Map([['ns1/web', { namespace: 'ns1', name: 'web', port, localEndpoints: 0 }]]));
    const none = await fetch(`http://127.0.0.1:${port}/`);
    expect([none.status, none.headers.get('x-load-balancing-endpoint-weight')]).toEqual([503, '0']);
  });

  it.skipIf(!hasIPv6Loopback())(
    "listens on every address of both families by default, as upstream's 0.0.0.0 (Go: one [::] socket): an IPv6 load balancer's health check reaches it",
    async () => {
      s = new ServiceHealthServers({ hosts: ['0.0.0.0'], proxyHealthy: () => true });
      const port = await freePort();
      await s.sync(new Map([['ns1/web', { namespace: 'ns1', name: 'web', port, localEndpoints: 1 }]]));
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      expect((await fetch(`http://[::1]:${port}/`)).status).toBe(200);
    },
  );

  it.skipIf(!hasIPv6Loopback())(
    'listens on the addresses a sync names, reopening when they change; one it cannot bind leaves none open and the next sync retries all (listenAndServeAll)',
    async () => {
      const errors: string[] = [];
      s = new ServiceHealthServers({
        hosts: ['0.0.0.0'],
        proxyHealthy: () => true,
        onError: (t, err) => errors.push(`${t.name}: ${(err as NodeJS.ErrnoException).code}`),
      });
      const port = await freePort();
      const targets = new Map([['ns1/web', { namespace: 'ns1', name: 'web', port, localEndpoints: 1 }]]);
      const reaches = async (host: string) => (await fetch(`http://${host}:${port}/`).catch(() => null))?.status ?? 'refused';
      await s.sync(targets, ['127.0.0.1']);
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual([200, 'refused']);
      await s.sync(targets, ['::1']);
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual(['refused', 200]);
      // ::1 taken by another process: 127.0.0.1 is not left open alone.
      await s.sync(new Map());
      const { createServer } = await import('node:net');
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(port, '::1', resolve));
      await s.sync(targets, ['127.0.0.1', '::1']);
      expect([errors, await reaches('127.0.0.1'), s.ports().size]).toEqual([['web: EADDRINUSE'], 'refused', 0]);
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      await s.sync(targets, ['127.0.0.1', '::1']);
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual([200, 200]);
    },
  );

  it('reports a port it cannot bind (taken by another process) and serves the others', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    const errors: string[] = [];
    s = new ServiceHealthServers({
      hosts: ['127.0.0.1'],
      proxyHealthy: () => true,
      onError: (t, err) => errors.push(`${t.name}: ${(err as NodeJS.ErrnoException).code}`),
    });
    try {
      await s.sync(new Map([['ns1/bad', { namespace: 'ns1', name: 'bad', port: taken, localEndpoints: 1 }]]));
      expect(errors).toEqual(['bad: EADDRINUSE']);
      expect(s.ports().size).toBe(0);
    } finally {
      blocker.close();
    }
  });
});

describe("serviceHealthHosts (upstream newServiceHealthServer, one per family's proxier)", () => {
  const lb = portState(servicePort({ healthCheckNodePort: 32000 }), []);
  const lb6 = portState(servicePort({ key: 'ns1/svc6:p80', name: 'svc6', clusterIP: 'fd00:30::41', healthCheckNodePort: 32001 }), []);
  const node = nodeInfo({ addresses: ['192.168.0.2'], primaryIP: '192.168.0.2' });

  const hostsOf = (...args: Parameters<typeof serviceHealthHosts>) => Object.fromEntries(serviceHealthHosts(...args));
  /** A snapshot of a sync that read these interface addresses. */
  const on = (snap: Snapshot, hostAddresses: readonly string[]): Snapshot => ({ ...snap, hostAddresses });

  it("nftables' default 'primary' on an IPv4-only node that programs both families: the IPv4 services listen on the node IP", () => {
    const v4 = snapshotOf([lb], { node });
    const v6 = snapshotOf([], { family: 'IPv6', node });
    expect(hostsOf(['primary'], [v4, v6])).toEqual({ 'ns1/svc1': ['192.168.0.2'] });
  });

  it("selects among the sync's interface addresses (GetNodeIPs' net.InterfaceAddrs): a Node address no interface has is not bound", () => {
    const cloud = nodeInfo({ addresses: ['10.0.0.5', '203.0.113.7'], primaryIP: '10.0.0.5' });
    const v4 = snapshotOf([lb], { node: cloud });
    // From objects alone (no interfaces read), the Node's addresses stand in.
    expect(hostsOf(['10.0.0.0/8', '203.0.113.0/24'], [v4])).toEqual({ 'ns1/svc1': ['10.0.0.5', '203.0.113.7'] });
    const read = on(v4, ['127.0.0.1', '10.0.0.5']);
    expect(hostsOf(['10.0.0.0/8', '203.0.113.0/24'], [read])).toEqual({ 'ns1/svc1': ['10.0.0.5'] });
    expect(hostsOf(['primary'], [read])).toEqual({ 'ns1/svc1': ['10.0.0.5'] });
    expect(hostsOf(['203.0.113.0/24'], [read])).toEqual({ 'ns1/svc1': [] });
  });

  it("a family that selects every address widens its own services only (upstream: that family's server on 0.0.0.0)", () => {
    const v4 = snapshotOf([lb], { node });
    const v6 = snapshotOf([lb6], { family: 'IPv6', node });
    expect(hostsOf(['primary'], [v4, v6])).toEqual({ 'ns1/svc1': ['192.168.0.2'], 'ns1/svc6': ['0.0.0.0'] });
    expect(hostsOf([], [v4, snapshotOf([], { family: 'IPv6', node })])).toEqual({ 'ns1/svc1': ['0.0.0.0'] });
    // A dual-stack service: where either family serves it.
    const dual = snapshotOf([portState(servicePort({ clusterIP: 'fd00:30::40', healthCheckNodePort: 32000 }), [])], {
      family: 'IPv6',
      node,
    });
    const host = ['192.168.0.2', 'fd00::2'];
    expect(hostsOf(['192.168.0.0/24', 'fd00::/8'], [on(v4, host), on(dual, host)])).toEqual({ 'ns1/svc1': ['192.168.0.2', 'fd00::2'] });
    expect(hostsOf(['primary'], [v4, dual])).toEqual({ 'ns1/svc1': ['0.0.0.0'] });
  });
});
