import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthState } from './health-state.ts';
import { healthHandler, listen, metricsHandler, rootHealth, type RunningServer } from './http-servers.ts';
import { createMetrics } from './metrics.ts';
import { VERSION } from '../version.ts';
import type { NodeInfo } from '../../proxier/types.ts';
import { hasIPv6Loopback } from '../../test/ipv6-loopback.ts';

/** A GET through node:http, which (unlike fetch) neither asks for nor undoes a content encoding. */
function rawGet(
  url: string,
  headers: Record<string, string | string[]> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const node: NodeInfo = {
  name: 'n',
  known: true,
  addresses: [],
  primaryIP: null,
  secondaryIP: null,
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
    expect(await get('/healthz')).toMatchObject({ code: 503, body: { nodeEligible: false, healthy: true } });
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

  it("writes upstream's ProxyHealth body (healthzHandler, Health): healthy is the proxiers' health alone, each family's lastUpdated is its own last sync, the top-level one is now only on a 200", async () => {
    let now = 1_000_000;
    const t = (ms: number): string => new Date(ms).toISOString();
    const state = new HealthState({ healthTimeoutMs: 60_000, clock: { now: () => now }, families: ['IPv4', 'IPv6'] });
    const s = await listen('127.0.0.1', 0, healthHandler(state, null));
    servers.push(s);
    const get = async (p: string) => {
      const r = await fetch(s.url + p);
      return { code: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const start = now;
    state.syncNode(node);
    now += 25_000;
    // Healthy: lastUpdated is "now" at the top only; each family shows when it last synced (here: the start).
    expect(await get('/healthz')).toEqual({
      code: 200,
      body: {
        lastUpdated: t(now),
        currentTime: t(now),
        nodeEligible: true,
        healthy: true,
        status: { IPv4: { lastUpdated: t(start), healthy: true }, IPv6: { lastUpdated: t(start), healthy: true } },
      },
    });
    // The node is being removed: 503, but the proxiers are healthy, and the body says so; no "now" substituted.
    state.syncNode({ ...node, toBeDeletedByAutoscaler: true });
    expect(await get('/healthz')).toEqual({
      code: 503,
      body: {
        lastUpdated: t(start),
        currentTime: t(now),
        nodeEligible: false,
        healthy: true,
        status: { IPv4: { lastUpdated: t(start), healthy: true }, IPv6: { lastUpdated: t(start), healthy: true } },
      },
    });
    expect((await get('/livez')).body).toMatchObject({ lastUpdated: t(now), healthy: true });
    // IPv6 late, IPv4 synced since: the top-level lastUpdated is the newest family sync, not "now".
    state.syncNode(node);
    state.queuedUpdate('IPv6');
    now += 61_000;
    state.updated('IPv4');
    const v4 = now;
    now += 1_000;
    expect(await get('/livez')).toEqual({
      code: 503,
      body: {
        lastUpdated: t(v4),
        currentTime: t(now),
        healthy: false,
        status: { IPv4: { lastUpdated: t(v4), healthy: true }, IPv6: { lastUpdated: t(start), healthy: false } },
      },
    });
  });

  it.skipIf(!hasIPv6Loopback())(
    'listens on 0.0.0.0 as Go\'s net.Listen("tcp") does: on both families (one [::] socket), so /healthz answers IPv6 probes too',
    async () => {
      const s = await listen('0.0.0.0', 0, (_req, res) => void res.end('ok'));
      servers.push(s);
      expect(s.url).toBe(`http://0.0.0.0:${s.port}`);
      expect(await (await fetch(`http://127.0.0.1:${s.port}/`)).text()).toBe('ok');
      expect(await (await fetch(`http://[::1]:${s.port}/`)).text()).toBe('ok');
      // An explicit address stays that address.
      const v4 = await listen('127.0.0.1', 0, (_req, res) => void res.end('ok'));
      servers.push(v4);
      await expect(fetch(`http://[::1]:${v4.port}/`)).rejects.toThrow();
    },
  );

  it('serves /metrics with upstream metric names, /proxyMode and /healthz', async () => {
    const metrics = createMetrics();
    metrics.syncProxyRulesLatency.observe({ ip_family: 'IPv4' }, 0.02);
    const s = await listen('127.0.0.1', 0, metricsHandler(metrics, 'iptables'));
    servers.push(s);
    const text = await (await fetch(s.url + '/metrics')).text();
    expect(text).toContain('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.032",ip_family="IPv4"} 1');
    expect(text).toContain('# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter');
    expect(text).toContain('process_resident_memory_bytes');
    // component-base prefixes help with the stability level.
    expect(text).toContain('# HELP kubeproxy_sync_proxy_rules_duration_seconds [ALPHA] SyncProxyRules latency in seconds\n');
    expect(text).toContain('# HELP rest_client_requests_total [ALPHA] Number of HTTP requests');
    expect(await (await fetch(s.url + '/proxyMode')).text()).toBe('iptables');
    expect(await (await fetch(s.url + '/healthz')).text()).toBe('ok');
    expect((await fetch(s.url + '/configz')).status).toBe(404);
  });

  it("compresses /metrics and /metrics/slis as promhttp.HandlerFor does (negotiateEncodingWriter over gddo's NegotiateContentEncoding, offers identity then gzip), and sends legacyregistry.Handler's Process-Start-Time-Unix on /metrics", async () => {
    const metrics = createMetrics(undefined, { processMetrics: false });
    metrics.syncProxyRulesLatency.observe({ ip_family: 'IPv4' }, 0.02);
    const s = await listen('127.0.0.1', 0, metricsHandler(metrics, 'iptables'));
    servers.push(s);
    await (await fetch(s.url + '/healthz')).text(); // one SLI sample
    const sample = 'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1';
    // Prometheus asks for gzip on every scrape ("Accept-Encoding: gzip").
    const gz = await rawGet(s.url + '/metrics', { 'Accept-Encoding': 'gzip' });
    expect([gz.status, gz.headers['content-encoding'], gz.headers['content-type']]).toEqual([
      200,
      'gzip',
      'text/plain; version=0.0.4; charset=utf-8',
    ]);
    expect(gunzipSync(gz.body).toString()).toContain(sample);
    // The process's start, in whole seconds (time.Time.Unix), on /metrics only (SLIMetricsWithReset passes no start).
    expect(gz.headers['process-start-time-unix']).toBe(String(Math.floor(performance.timeOrigin / 1000)));
    const slis = await rawGet(s.url + '/metrics/slis', { 'Accept-Encoding': 'gzip' });
    expect([slis.headers['content-encoding'], slis.headers['process-start-time-unix']]).toEqual(['gzip', undefined]);
    expect(gunzipSync(slis.body).toString()).toContain('kubernetes_healthcheck{name="ping",type="healthz"} 1');
    // Identity when not asked, when identity ranks as high (the first offer wins a tie), when gzip is refused (q=0:
    // no encoding is acceptable, and promhttp then writes identity), for offers it does not make, and for a value
    // with a parameter other than q (the parser gives up on that header line).
    for (const ae of [undefined, 'gzip, identity', '*', 'gzip;q=0', 'br', 'gzip;level=9']) {
      const r = await rawGet(s.url + '/metrics', ae === undefined ? {} : { 'Accept-Encoding': ae });
      expect([ae, r.headers['content-encoding']]).toEqual([ae, undefined]);
      expect(r.body.toString()).toContain(sample);
    }
    // gzip outranking identity, or the only offer of several, or on a second header line.
    for (const ae of ['identity;q=0.5, gzip', 'deflate, gzip;q=0.8', ['br;x=1', 'gzip']])
      expect((await rawGet(s.url + '/metrics', { 'Accept-Encoding': ae })).headers['content-encoding']).toBe('gzip');
  });

  it('serves kubernetes_feature_enabled as featureGate.AddMetrics records it (RecordFeatureInfo: name, stage as the newest release registers it, 1 when enabled), for the gates kube-proxy-ts reads: AllAlpha, AllBeta and the ones it acts on', async () => {
    const metrics = createMetrics(undefined, {
      processMetrics: false,
      featureGates: { AllAlpha: true, PreferSameTrafficDistribution: false, TopologyAwareHints: true },
    });
    const s = await listen('127.0.0.1', 0, metricsHandler(metrics, 'iptables'));
    servers.push(s);
    const text = await (await fetch(s.url + '/metrics')).text();
    expect(text).toContain(
      '# HELP kubernetes_feature_enabled [BETA] This metric records the data about the stage and enablement of a k8s feature.\n',
    );
    expect(text.split('\n').filter((l) => l.startsWith('kubernetes_feature_enabled{'))).toEqual([
      'kubernetes_feature_enabled{name="AllAlpha",stage="ALPHA"} 1',
      'kubernetes_feature_enabled{name="AllBeta",stage="BETA"} 0',
      // v1.36's deprecated gate, on by default; AllAlpha/AllBeta leave it alone.
      'kubernetes_feature_enabled{name="AllowServiceExternalIPs",stage="DEPRECATED"} 1',
      // The z-pages' gates, beta and on from v1.36.
      'kubernetes_feature_enabled{name="ComponentFlagz",stage="BETA"} 1',
      'kubernetes_feature_enabled{name="ComponentStatusz",stage="BETA"} 1',
      // AllAlpha turns on the alpha gates not set, as featureGate.Enabled does; GA ("") and set gates keep their value.
      'kubernetes_feature_enabled{name="LoggingAlphaOptions",stage="ALPHA"} 1',
      'kubernetes_feature_enabled{name="LoggingBetaOptions",stage="BETA"} 1',
      'kubernetes_feature_enabled{name="MultiCIDRServiceAllocator",stage=""} 1',
      'kubernetes_feature_enabled{name="PreferSameTrafficDistribution",stage=""} 0',
    ]);
  });

  it("serves the version it runs as kubeproxy_ts_build_info, not as component-base's kubernetes_build_info: its git_version would differ from the cluster's and fire kubernetes-mixin's KubeVersionMismatch (count by git_version of kubernetes_build_info > 1) on every cluster", async () => {
    const s = await listen('127.0.0.1', 0, metricsHandler(createMetrics(undefined, { processMetrics: false }), 'iptables'));
    servers.push(s);
    const text = await (await fetch(s.url + '/metrics')).text();
    expect(text).toContain(
      `kubeproxy_ts_build_info{version="v${VERSION}",node_version="${process.version}",platform="${process.platform}/${process.arch}"} 1\n`,
    );
    expect(text).not.toContain('kubernetes_build_info');
  });

  it("serves /configz as upstream's configz handler: the configuration under the group's name", async () => {
    const doc = { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'nftables' };
    const s = await listen('127.0.0.1', 0, metricsHandler(createMetrics(), 'nftables', { configz: doc }));
    servers.push(s);
    const r = await fetch(s.url + '/configz');
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({ 'kubeproxy.config.k8s.io': doc });
  });

  it("serves /debug/flags/v with --profiling as upstream's DebugFlags (StringFlagPutHandler): PUT sets -v, other methods 406, the index page beside it; without it 404", async () => {
    const set: string[] = [];
    const setter = (value: string) => (set.push(value), value === 'x' ? { ok: false, message: 'bad x' } : { ok: true, message: `set ${value}` });
    const s = await listen('127.0.0.1', 0, metricsHandler(createMetrics(undefined, { processMetrics: false }), 'iptables', { setVerbosity: setter }));
    const plain = await listen('127.0.0.1', 0, metricsHandler(createMetrics(undefined, { processMetrics: false }), 'iptables'));
    servers.push(s, plain);
    const call = async (url: string, method: string, body?: string) => {
      const r = await fetch(url + '/debug/flags/v', { method, ...(body === undefined ? {} : { body }) });
      return `${r.status} ${await r.text()}`;
    };
    expect(await call(s.url, 'PUT', '3')).toBe('200 set 3');
    expect(await call(s.url, 'PUT', 'x')).toBe('400 bad x');
    expect(await call(s.url, 'GET')).toBe('406 unsupported http method');
    expect(set).toEqual(['3', 'x']);
    expect(await call(plain.url, 'PUT', '3')).toBe('404 404 page not found\n');
    // DebugFlags.Index: /debug/flags and anything else under it list the flags; without --profiling, nothing.
    for (const path of ['/debug/flags', '/debug/flags/', '/debug/flags/vmodule']) {
      const r = await fetch(s.url + path);
      expect([r.status, r.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
      expect(await r.text()).toBe(
        '<html>\n<head>\n<title>/debug/flags/</title>\n</head>\n<body>\n/debug/flags/<br>\n<br>\nflags:<br>\n<table>\n\n<tr>v<br>\n\n</table>\n<br>\nfull flags configurable<br>\n</body>\n</html>\n',
      );
      expect((await fetch(plain.url + path)).status).toBe(404);
    }
  });

  it("serves the metrics server's /healthz as component-base's healthz.InstallHandler: the ping check, ?verbose, ?exclude, /healthz/ping", async () => {
    const s = await listen('127.0.0.1', 0, metricsHandler(createMetrics(undefined, { processMetrics: false }), 'iptables'));
    servers.push(s);
    const get = async (path: string) => {
      const r = await fetch(s.url + path);
      return { status: r.status, type: r.headers.get('content-type'), nosniff: r.headers.get('x-content-type-options'), body: await r.text() };
    };
    expect(await get('/healthz')).toEqual({ status: 200, type: 'text/plain; charset=utf-8', nosniff: 'nosniff', body: 'ok' });
    expect((await get('/healthz?verbose')).body).toBe('[+]ping ok\nhealthz check passed\n');
    // Any value counts: Go looks the key up.
    expect((await get('/healthz?verbose=false')).body).toBe('[+]ping ok\nhealthz check passed\n');
    expect((await get('/healthz?verbose&exclude=ping')).body).toBe('[+]ping excluded: ok\nhealthz check passed\n');
    expect((await get('/healthz?verbose&exclude=etcd&exclude=log&exclude=ping')).body).toBe(
      '[+]ping excluded: ok\nwarn: some health checks cannot be excluded: no matches for "etcd","log"\nhealthz check passed\n',
    );
    expect((await get('/healthz?exclude=nope')).body).toBe('ok');
    expect(await get('/healthz/ping')).toMatchObject({ status: 200, body: 'ok' });
    expect((await get('/healthz/log')).status).toBe(404);
    expect((await get('/healthz/')).status).toBe(404);
  });

  it('serves /metrics/slis as SLIMetricsWithReset: kubernetes_healthcheck{,s_total} from the /healthz checks run, not in /metrics; DELETE resets', async () => {
    const metrics = createMetrics(undefined, { processMetrics: false });
    const s = await listen('127.0.0.1', 0, metricsHandler(metrics, 'iptables'));
    servers.push(s);
    expect(await (await fetch(s.url + '/metrics/slis')).text()).not.toContain('kubernetes_healthcheck{');
    for (const path of ['/healthz', '/healthz?verbose', '/healthz?exclude=ping', '/healthz/ping']) await (await fetch(s.url + path)).text();
    const slis = await (await fetch(s.url + '/metrics/slis')).text();
    expect(slis).toContain(
      '# HELP kubernetes_healthcheck [STABLE] This metric records the result of a single healthcheck.\n# TYPE kubernetes_healthcheck gauge\n',
    );
    expect(slis).toContain('kubernetes_healthcheck{name="ping",type="healthz"} 1\n');
    // Excluded and single-check requests are not recorded: two runs.
    expect(slis).toContain('kubernetes_healthchecks_total{name="ping",type="healthz",status="success"} 2\n');
    expect(await metrics.registry.metrics()).not.toContain('kubernetes_healthcheck');
    const reset = await fetch(s.url + '/metrics/slis', { method: 'DELETE' });
    expect([reset.status, await reset.text()]).toEqual([200, 'metrics reset\n']);
    expect(await (await fetch(s.url + '/metrics/slis')).text()).not.toContain('kubernetes_healthchecks_total{');
  });

  it('healthz.handleRootHealth: a failing check makes it 500, its reason withheld, and is recorded as an error', () => {
    const seen: string[] = [];
    const checks = [
      { name: 'ping', check: () => null },
      { name: 'informer-sync', check: () => '2 informers not started yet' },
    ];
    const r = rootHealth('healthz', checks, new URLSearchParams('exclude=a"b'), (c, ok) => seen.push(`${c}=${ok}`));
    expect(r).toEqual({
      code: 500,
      body: '[+]ping ok\n[-]informer-sync failed: reason withheld\nwarn: some health checks cannot be excluded: no matches for "a\\"b"\nhealthz check failed\n',
    });
    expect(seen).toEqual(['ping=true', 'informer-sync=false']);
  });
});
