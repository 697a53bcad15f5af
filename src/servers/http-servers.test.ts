import { afterEach, describe, expect, it } from 'vitest';
import { HealthState } from './health-state.ts';
import { healthHandler, listen, metricsHandler, type RunningServer } from './http-servers.ts';
import { createMetrics } from './metrics.ts';
import type { NodeInfo } from '../../proxier/types.ts';

const node: NodeInfo = {
  name: 'n',
  known: true,
  addresses: [],
  primaryIP: null,
  labels: {},
  zone: null,
  podCIDRs: [],
  deleting: false,
  toBeDeletedByAutoscaler: false,
};

describe('health and metrics servers', () => {
  let servers: RunningServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  it('answers /healthz and /livez with upstream semantics', async () => {
    let now = 1_000_000;
    const state = new HealthState({ healthTimeoutMs: 60_000, clock: { now: () => now }, families: ['IPv4'] });
    const metrics = createMetrics(undefined, { processMetrics: false });
    const s = await listen('127.0.0.1', 0, healthHandler(state, metrics));
    servers.push(s);
    const get = async (p: string) => {
      const r = await fetch(s.url + p);
      return { code: r.status, body: (await r.json()) as Record<string, unknown>, type: r.headers.get('content-type') };
    };
    // Node not known yet: livez healthy, healthz not (node not eligible).
    expect((await get('/livez')).code).toBe(200);
    expect(await get('/healthz')).toMatchObject({ code: 503, body: { nodeEligible: false, healthy: false } });
    state.syncNode(node);
    expect(await get('/healthz')).toMatchObject({
      code: 200,
      type: 'application/json',
      body: { nodeEligible: true, healthy: true, status: { IPv4: { healthy: true } } },
    });
    // A change queued and not synced for longer than the timeout makes it unhealthy.
    state.queuedUpdate('IPv4');
    now += 59_000;
    expect((await get('/livez')).code).toBe(200);
    now += 2_000;
    expect((await get('/livez')).code).toBe(503);
    state.updated('IPv4');
    expect((await get('/healthz')).code).toBe(200);
    state.syncNode({ ...node, toBeDeletedByAutoscaler: true });
    expect((await get('/healthz')).code).toBe(503);
    expect((await fetch(s.url + '/other')).status).toBe(404);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/kubeproxy_proxy_healthz_total\{code="503"\} 2/);
    expect(text).toMatch(/kubeproxy_proxy_livez_total\{code="200"\} 2/);
  });

  it('serves /metrics with upstream metric names, /proxyMode and /healthz', async () => {
    const metrics = createMetrics();
    metrics.syncProxyRulesLatency.observe({ ip_family: 'IPv4' }, 0.02);
    const s = await listen('127.0.0.1', 0, metricsHandler(metrics, 'iptables'));
    servers.push(s);
    const text = await (await fetch(s.url + '/metrics')).text();
    expect(text).toContain('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.032",ip_family="IPv4"} 1');
    expect(text).toContain('# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter');
    expect(text).toContain('process_resident_memory_bytes');
    expect(await (await fetch(s.url + '/proxyMode')).text()).toBe('iptables');
    expect(await (await fetch(s.url + '/healthz')).text()).toBe('ok');
    expect((await fetch(s.url + '/configz')).status).toBe(404);
  });

  it("serves /configz as upstream's configz handler: the configuration under the group's name", async () => {
    const doc = { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'nftables' };
    const s = await listen('127.0.0.1', 0, metricsHandler(createMetrics(), 'nftables', undefined, doc));
    servers.push(s);
    const r = await fetch(s.url + '/configz');
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({ 'kubeproxy.config.k8s.io': doc });
  });
});
