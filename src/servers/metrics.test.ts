/**
 * The API client's metrics as client-go exports them
 * (component-base/metrics/prometheus/restclient): rest_client_requests_total
 * {code,method,host} for every request, watches included, and
 * rest_client_request_duration_seconds{verb,host} with client-go's buckets for
 * all but watches; and the series the kubernetes-mixin proxy dashboard reads,
 * all present once a sync and a few requests happened.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { KUBE_PROXY_DASHBOARD, NOT_EXPORTED, matcherLabels, metricNames } from '../../test/kube-proxy-dashboard.case.ts';
import { createMetrics, observeRestClientRequest } from './metrics.ts';

describe('rest_client metrics', () => {
  it("count every request by code, method and host, and time all but watches with client-go's buckets", async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    const host = 'k8s-api.example:6443';
    observeRestClientRequest(m, { method: 'GET', host, code: '200', seconds: 0.02 });
    observeRestClientRequest(m, { method: 'GET', host, code: '200' });
    observeRestClientRequest(m, { method: 'GET', host, code: '<error>' });
    observeRestClientRequest(m, { method: 'POST', host, code: '201', seconds: 3 });
    const text = await m.registry.metrics();
    expect(text).toContain(`rest_client_requests_total{code="200",method="GET",host="${host}"} 2`);
    expect(text).toContain(`rest_client_requests_total{code="<error>",method="GET",host="${host}"} 1`);
    expect(text).toContain(`rest_client_requests_total{code="201",method="POST",host="${host}"} 1`);
    const buckets = [...text.matchAll(/^rest_client_request_duration_seconds_bucket\{le="([^"]+)",verb="GET"/gm)].map((x) => x[1]);
    expect(buckets).toEqual(['0.005', '0.025', '0.1', '0.25', '0.5', '1', '2', '4', '8', '15', '30', '60', '+Inf']);
    expect(text).toContain(`rest_client_request_duration_seconds_count{verb="GET",host="${host}"} 1`);
    expect(text).toContain(`rest_client_request_duration_seconds_bucket{le="4",verb="POST",host="${host}"} 1`);
    expect(text).toContain(`rest_client_request_duration_seconds_bucket{le="2",verb="POST",host="${host}"} 0`);
  });
});

describe("upstream's kube-proxy histograms (pkg/proxy/metrics)", () => {
  it('NetworkProgrammingLatency: the buckets of metrics.MergeBuckets, which starts its result with a 0 bucket', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    m.networkProgrammingLatency.zero({ ip_family: 'IPv4' });
    const les = [...(await m.registry.metrics()).matchAll(/^kubeproxy_network_programming_duration_seconds_bucket\{le="([^"]+)"/gm)].map((x) => x[1]);
    const range = (from: number, step: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i * step));
    expect(les).toEqual(['0', '0.25', '0.5', ...range(1, 1, 59), ...range(60, 5, 12), ...range(120, 30, 7), '+Inf']);
  });
});

describe('the kubernetes-mixin proxy dashboard', () => {
  it('reads the metric names and filter labels of every panel', () => {
    const names = new Set(KUBE_PROXY_DASHBOARD.flatMap((q) => metricNames(q.expr)));
    expect([...names].sort()).toEqual([
      'go_goroutines',
      'kubeproxy_network_programming_duration_seconds_bucket',
      'kubeproxy_network_programming_duration_seconds_count',
      'kubeproxy_sync_proxy_rules_duration_seconds_bucket',
      'kubeproxy_sync_proxy_rules_duration_seconds_count',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'rest_client_request_duration_seconds_bucket',
      'rest_client_requests_total',
      'up',
    ]);
    expect(matcherLabels(KUBE_PROXY_DASHBOARD.find((q) => q.panel === 'Post Request Latency 99th Quantile')!.expr)).toEqual(['verb']);
    expect(matcherLabels(KUBE_PROXY_DASHBOARD.find((q) => q.panel === 'Kube API Request Rate')!.expr)).toEqual(['code']);
  });

  it('finds every series it reads (but up and go_goroutines) after a sync and some API requests', async () => {
    const m = createMetrics(new Registry());
    m.networkProgrammingLatency.zero({ ip_family: 'IPv4' });
    m.syncProxyRulesLatency.observe({ ip_family: 'IPv4' }, 0.01);
    observeRestClientRequest(m, { method: 'GET', host: 'h:6443', code: '200', seconds: 0.01 });
    observeRestClientRequest(m, { method: 'POST', host: 'h:6443', code: '201', seconds: 0.01 });
    const lines = (await m.registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'));
    for (const q of KUBE_PROXY_DASHBOARD) {
      for (const name of metricNames(q.expr)) {
        if (NOT_EXPORTED[name]) continue;
        const samples = lines.filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
        expect(samples.length, `${q.panel}: ${name}`).toBeGreaterThan(0);
        for (const label of matcherLabels(q.expr))
          expect(
            samples.some((l) => l.includes(`${label}="`)),
            `${q.panel}: ${name}{${label}}`,
          ).toBe(true);
      }
    }
  });
});
