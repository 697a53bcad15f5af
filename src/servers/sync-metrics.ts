/**
 * Sync reports and failures into upstream's kubeproxy_sync_proxy_rules_*
 * series: the modes report what they did (proxier/mode.ts), this is the one
 * place that knows the metric names. Upstream's userspace mode fed none of
 * them, and neither does ours (its own series are in userspace-metrics.ts).
 */
import { ApplyError, type ProxyModeName, type SyncReport } from '../../proxier/mode.ts';
import type { IPFamily } from '../../proxier/types.ts';
import type { Metrics } from './metrics.ts';

export function observeSync(m: Metrics, mode: ProxyModeName, r: SyncReport): void {
  if (mode === 'userspace') return;
  const labels = { ip_family: r.family };
  const seconds = r.durationMs / 1000;
  m.syncProxyRulesLatency.observe(labels, seconds);
  (r.full ? m.syncFullProxyRulesLatency : m.syncPartialProxyRulesLatency).observe(labels, seconds);
  // Upstream's nftables mode exports no rule counts (the iptables_* series are the iptables mode's).
  if (mode !== 'nftables') {
    for (const [table, n] of r.objects) m.iptablesRulesTotal.set({ table, ip_family: r.family }, n);
    for (const [table, n] of r.written) m.iptablesRulesLast.set({ table, ip_family: r.family }, n);
  }
  if (r.noLocalEndpoints) {
    m.noLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: r.family }, r.noLocalEndpoints.internal);
    m.noLocalEndpointsTotal.set({ traffic_policy: 'external', ip_family: r.family }, r.noLocalEndpoints.external);
  }
  // conntrack.CleanStaleEntries: after a reconcile that listed the entries, its duration and its deletions (Add(0) too).
  if (r.conntrackReconcileMs !== undefined) {
    m.conntrackReconcileLatency.observe(labels, r.conntrackReconcileMs / 1000);
    m.conntrackDeletedEntriesTotal.inc(labels, r.conntrackDeleted);
  }
  // Upstream's nftables mode counts a failed deletion of stale chains (the next sync is then full).
  if (mode === 'nftables' && r.failures.some((f) => f.stage === 'cleanup')) m.nftablesCleanupFailuresTotal.inc(labels);
}

/**
 * A failed sync: kube-proxy-ts' error counter by cause, and upstream's counters when the kernel refused the rules
 * (iptables mode: restore failures; nftables mode: sync failures).
 */
export function observeSyncError(m: Metrics, mode: ProxyModeName, family: IPFamily, err: unknown): void {
  const cause = err instanceof ApplyError ? err.cause : err;
  m.syncErrorsTotal.inc({ ip_family: family, reason: cause instanceof Error ? cause.name : 'error' });
  if (!(err instanceof ApplyError)) return;
  if (mode === 'nftables') return void m.nftablesSyncFailuresTotal.inc({ ip_family: family });
  if (mode !== 'iptables') return;
  m.iptablesRestoreFailuresTotal.inc({ ip_family: family });
  if (!err.full) m.iptablesPartialRestoreFailuresTotal.inc({ ip_family: family });
}
