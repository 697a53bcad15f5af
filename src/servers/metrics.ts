/**
 * Prometheus metrics with upstream kube-proxy's names and labels
 * (pkg/proxy/metrics), on a registry owned by the caller (one per agent, a
 * fresh one per test), plus Node.js process metrics and the API client's
 * rest_client_* metrics with client-go's names, labels and buckets
 * (component-base/metrics/prometheus/restclient).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, exponentialBuckets } from 'prom-client';
import type { ProxyModeName } from '../../proxier/mode.ts';
import { featureGateStates } from '../feature-gates.ts';
import { registerProcessMetrics } from './process-metrics.ts';
import { VERSION } from '../version.ts';

/**
 * Upstream's network programming buckets: metrics.MergeBuckets of 0.25, 0.5, 1..59 (1 s), 60..115 (5 s) and
 * 120..300 (30 s), and MergeBuckets starts its result with a 0 (`make([]float64, 1)`), so upstream has an le="0" bucket.
 */
export function networkProgrammingBuckets(): number[] {
  const b = [0, 0.25, 0.5];
  for (let i = 1; i < 60; i++) b.push(i);
  for (let i = 60; i < 120; i += 5) b.push(i);
  for (let i = 120; i <= 300; i += 30) b.push(i);
  return b;
}

/** client-go's rest_client_request_duration_seconds buckets (component-base restclient requestLatency). */
export const REST_CLIENT_LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

/** component-base prefixes each metric's help with its stability level; all of kube-proxy's own are ALPHA. */
export const ALPHA = '[ALPHA] ';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(
  registry: Registry = new Registry(),
  opts: {
    processMetrics?: boolean;
    /** The --feature-gates the agent runs with, for kubernetes_feature_enabled (none set: the defaults). */
    featureGates?: Readonly<Record<string, boolean>>;
    /**
     * The mode the agent runs: as upstream's RegisterMetrics(mode), the iptables-only and nftables-only families are
     * registered in their mode alone (in another, what is recorded into them goes nowhere); none given: all.
     */
    mode?: ProxyModeName;
  } = {},
) {
  const registers = [registry];
  const only = (...modes: ProxyModeName[]): Registry[] => (opts.mode === undefined || modes.includes(opts.mode) ? registers : []);
  const iptables = only('iptables');
  const nftables = only('nftables');
  // Upstream registers the full and partial sync latencies in the iptables mode only; the nftables mode's partial
  // syncs are worth telling apart too, so kube-proxy-ts keeps them there (the README says so).
  const ruleModes = only('iptables', 'nftables');
  const syncBuckets = exponentialBuckets(0.001, 2, 15);
  const hist = (name: string, help: string, buckets = syncBuckets, to = registers) =>
    new Histogram({ name, help: ALPHA + help, labelNames: ['ip_family'], buckets, registers: to });
  const m = {
    registry,
    syncProxyRulesLatency: hist('kubeproxy_sync_proxy_rules_duration_seconds', 'SyncProxyRules latency in seconds'),
    syncFullProxyRulesLatency: hist(
      'kubeproxy_sync_full_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for full resyncs',
      syncBuckets,
      ruleModes,
    ),
    syncPartialProxyRulesLatency: hist(
      'kubeproxy_sync_partial_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for partial resyncs',
      syncBuckets,
      ruleModes,
    ),
    networkProgrammingLatency: hist(
      'kubeproxy_network_programming_duration_seconds',
      'In Cluster Network Programming Latency in seconds',
      networkProgrammingBuckets(),
    ),
    syncProxyRulesLastTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      help: ALPHA + 'The last time proxy rules were successfully synced',
      labelNames: ['ip_family'],
      registers,
    }),
    syncProxyRulesLastQueuedTimestamp: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      help: ALPHA + 'The last time a sync of proxy rules was queued',
      labelNames: ['ip_family'],
      registers,
    }),
    endpointChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      help: ALPHA + 'Cumulative proxy rules Endpoint changes',
      registers,
    }),
    endpointChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      help: ALPHA + 'Pending proxy rules Endpoint changes',
      registers,
    }),
    serviceChangesTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_service_changes_total',
      help: ALPHA + 'Cumulative proxy rules Service changes',
      registers,
    }),
    serviceChangesPending: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
      help: ALPHA + 'Pending proxy rules Service changes',
      registers,
    }),
    iptablesRulesTotal: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_total',
      help: ALPHA + 'Total number of iptables rules owned by kube-proxy',
      labelNames: ['table', 'ip_family'],
      registers: iptables,
    }),
    iptablesRulesLast: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_last',
      help: ALPHA + 'Number of iptables rules written by kube-proxy in last sync',
      labelNames: ['table', 'ip_family'],
      registers: iptables,
    }),
    iptablesRestoreFailuresTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
      help: ALPHA + 'Cumulative proxy iptables restore failures',
      labelNames: ['ip_family'],
      registers: iptables,
    }),
    iptablesPartialRestoreFailuresTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
      help: ALPHA + 'Cumulative proxy iptables partial restore failures',
      labelNames: ['ip_family'],
      registers: iptables,
    }),
    nftablesSyncFailuresTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
      help: ALPHA + 'Cumulative proxy nftables sync failures',
      labelNames: ['ip_family'],
      registers: nftables,
    }),
    nftablesCleanupFailuresTotal: new Counter({
      name: 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total',
      help: ALPHA + 'Cumulative proxy nftables cleanup failures',
      labelNames: ['ip_family'],
      registers: nftables,
    }),
    noLocalEndpointsTotal: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: ALPHA + 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['traffic_policy', 'ip_family'],
      registers,
    }),
    healthzTotal: new Counter({
      name: 'kubeproxy_proxy_healthz_total',
      help: ALPHA + 'Cumulative proxy healthz HTTP status',
      labelNames: ['code'],
      registers,
    }),
    livezTotal: new Counter({
      name: 'kubeproxy_proxy_livez_total',
      help: ALPHA + 'Cumulative proxy livez HTTP status',
      labelNames: ['code'],
      registers,
    }),
    conntrackDeletedEntriesTotal: new Counter({
      name: 'kubeproxy_conntrack_reconciler_deleted_entries_total',
      help: ALPHA + 'Cumulative conntrack flows deleted by conntrack reconciler',
      labelNames: ['ip_family'],
      registers,
    }),
    conntrackReconcileLatency: hist('kubeproxy_conntrack_reconciler_sync_duration_seconds', 'ReconcileConntrackFlowsLatency latency in seconds'),
    syncErrorsTotal: new Counter({
      name: 'kubeproxy_ts_sync_errors_total',
      help: 'Syncs that failed for any reason (kube-proxy-ts)',
      labelNames: ['ip_family', 'reason'],
      registers,
    }),
    outsideChangesTotal: new Counter({
      name: 'kubeproxy_ts_outside_changes_total',
      help: 'Outside changes to the rules found and repaired by a full sync, by kind: flushed, rules, table (kube-proxy-ts)',
      labelNames: ['ip_family', 'kind'],
      registers,
    }),
    objectProblemsTotal: new Counter({
      name: 'kubeproxy_ts_skipped_objects_total',
      help: 'Objects or fields skipped because upstream would not program them (kube-proxy-ts)',
      labelNames: ['kind'],
      registers,
    }),
    restClientRequestsTotal: new Counter({
      name: 'rest_client_requests_total',
      help: ALPHA + 'Number of HTTP requests, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
      registers,
    }),
    restClientRequestLatency: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: ALPHA + 'Request latency in seconds. Broken down by verb, and host.',
      labelNames: ['verb', 'host'],
      buckets: REST_CLIENT_LATENCY_BUCKETS,
      registers,
    }),
  };
  // In place of component-base's kubernetes_build_info, whose labels describe a Kubernetes build: with kube-proxy-ts'
  // own version in git_version, kubernetes-mixin's KubeVersionMismatch alert (more than one git_version among every
  // component's kubernetes_build_info, for 15 minutes) would fire in every cluster that scrapes kube-proxy.
  new Gauge({
    name: 'kubeproxy_ts_build_info',
    help: "A metric with a constant '1' value labeled by the version of kube-proxy-ts, the Node.js version that runs it and the platform it runs on (kube-proxy-ts)",
    labelNames: ['version', 'node_version', 'platform'],
    registers,
  }).set({ version: `v${VERSION}`, node_version: process.version, platform: `${process.platform}/${process.arch}` }, 1);
  // component-base's featuremetrics (BETA), recorded once at start as kube-proxy's AddMetrics call does.
  const featureEnabled = new Gauge({
    name: 'kubernetes_feature_enabled',
    help: '[BETA] This metric records the data about the stage and enablement of a k8s feature.',
    labelNames: ['name', 'stage'],
    registers,
  });
  for (const f of featureGateStates(opts.featureGates ?? {})) featureEnabled.set({ name: f.name, stage: f.stage }, f.enabled ? 1 : 0);
  if (opts.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    registerProcessMetrics(registry);
  }
  return { ...m, slis: createSliMetrics() };
}

export type SliMetrics = ReturnType<typeof createSliMetrics>;

/**
 * component-base's SLI metrics (metrics/prometheus/slis), on a registry of their own that the metrics server
 * serves at /metrics/slis: each health check's last result (1 or 0) and a count of results, recorded by the
 * /healthz handler (healthz.handleRootHealth calls slis.ObserveHealthcheck). STABLE since 1.29.
 */
export function createSliMetrics(registry: Registry = new Registry()) {
  const registers = [registry];
  const healthcheck = new Gauge({
    name: 'kubernetes_healthcheck',
    help: '[STABLE] This metric records the result of a single healthcheck.',
    labelNames: ['name', 'type'],
    registers,
  });
  const healthchecksTotal = new Counter({
    name: 'kubernetes_healthchecks_total',
    help: '[STABLE] This metric records the results of all healthcheck.',
    labelNames: ['name', 'type', 'status'],
    registers,
  });
  return {
    registry,
    /** slis.ObserveHealthcheck: `type` is the health path's name ("healthz"). */
    observeHealthcheck(name: string, type: string, ok: boolean): void {
      healthcheck.set({ name, type }, ok ? 1 : 0);
      healthchecksTotal.inc({ name, type, status: ok ? 'success' : 'error' });
    },
  };
}

/** One API request into the rest_client metrics (client-go counts every request; it times all but watches). */
export function observeRestClientRequest(
  m: Metrics,
  r: { readonly method: string; readonly host: string; readonly code: string; readonly seconds?: number },
): void {
  m.restClientRequestsTotal.inc({ code: r.code, method: r.method, host: r.host });
  if (r.seconds !== undefined) m.restClientRequestLatency.observe({ verb: r.method, host: r.host }, r.seconds);
}
