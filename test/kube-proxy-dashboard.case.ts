/**
 * The PromQL of the kube-proxy dashboard most Prometheus setups ship:
 * kubernetes-monitoring/kubernetes-mixin, dashboards/proxy.libsonnet ("Proxy",
 * uid from grafanaDashboardIDs['proxy.json']), read at commit
 * acdade96d1fe4ebc886664b410e75035e1ea7615. Only the query strings are kept,
 * with the mixin's %(clusterLabel)s and %(kubeProxySelector)s placeholders
 * filled with its defaults (cluster, job="kube-proxy"); the panel titles are
 * the mixin's.
 */

export interface DashboardQuery {
  readonly panel: string;
  readonly expr: string;
}

const SEL = 'cluster="$cluster", job="kube-proxy"';

export const KUBE_PROXY_DASHBOARD: readonly DashboardQuery[] = [
  { panel: 'Up', expr: `sum(up{${SEL}})` },
  { panel: 'Rules Sync Rate', expr: `sum(rate(kubeproxy_sync_proxy_rules_duration_seconds_count{${SEL}, instance=~"$instance"}[5m]))` },
  {
    panel: 'Rule Sync Latency 99th Quantile',
    expr: `histogram_quantile(0.99,rate(kubeproxy_sync_proxy_rules_duration_seconds_bucket{${SEL}, instance=~"$instance"}[5m]))`,
  },
  { panel: 'Network Programming Rate', expr: `sum(rate(kubeproxy_network_programming_duration_seconds_count{${SEL}, instance=~"$instance"}[5m]))` },
  {
    panel: 'Network Programming Latency 99th Quantile',
    expr: `histogram_quantile(0.99, sum(rate(kubeproxy_network_programming_duration_seconds_bucket{${SEL}, instance=~"$instance"}[5m])) by (instance, le))`,
  },
  ...['2..', '3..', '4..', '5..'].map((code) => ({
    panel: 'Kube API Request Rate',
    expr: `sum(rate(rest_client_requests_total{${SEL}, instance=~"$instance",code=~"${code}"}[5m]))`,
  })),
  {
    panel: 'Post Request Latency 99th Quantile',
    expr: `histogram_quantile(0.99, sum(rate(rest_client_request_duration_seconds_bucket{${SEL},instance=~"$instance",verb="POST"}[5m])) by (verb, url, le))`,
  },
  {
    panel: 'Get Request Latency 99th Quantile',
    expr: `histogram_quantile(0.99, sum(rate(rest_client_request_duration_seconds_bucket{${SEL}, instance=~"$instance", verb="GET"}[5m])) by (verb, url, le))`,
  },
  { panel: 'Memory', expr: `process_resident_memory_bytes{${SEL},instance=~"$instance"}` },
  { panel: 'CPU usage', expr: `rate(process_cpu_seconds_total{${SEL},instance=~"$instance"}[5m])` },
  { panel: 'Goroutines', expr: `go_goroutines{${SEL},instance=~"$instance"}` },
  { panel: 'instance variable', expr: `label_values(kubeproxy_network_programming_duration_seconds_bucket{${SEL}}, instance)` },
];

/**
 * Series the dashboard reads that no kube-proxy exports, with the reason:
 * `up` is written by Prometheus for each scrape; `go_goroutines` is the Go
 * runtime's (a Node.js process has no goroutines; nodejs_active_handles is
 * the nearest figure), so that one panel stays empty.
 */
export const NOT_EXPORTED: Readonly<Record<string, string>> = {
  up: 'made by Prometheus per scrape target',
  go_goroutines: 'Go runtime metric; a Node.js process has none',
};

/** Metric names a query selects (identifiers followed by a label matcher). */
export function metricNames(expr: string): string[] {
  return [...new Set([...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!))];
}

/**
 * Label names a query filters on, other than the scrape target's own
 * (cluster, job, instance). Grouping labels are left out: the latency panels
 * group `by (verb, url, le)`, and client-go replaced `url` with `host` in
 * Kubernetes 1.23 (kubernetes/kubernetes#106539), so against a current
 * kube-proxy they draw one line per verb, as against kube-proxy-ts.
 */
export function matcherLabels(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) for (const l of m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) names.add(l[1]!);
  for (const own of ['cluster', 'job', 'instance']) names.delete(own);
  return [...names];
}
