/**
 * Sync reports into upstream's series (pkg/proxy/metrics: SyncProxyRulesLatency, IPTablesRulesTotal,
 * IPTablesRulesLastSync, SyncProxyRulesNoLocalEndpointsTotal, IPTablesRestoreFailuresTotal, ...), as a scraper
 * reads them; userspace mode feeds none of them, as upstream's did not.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RestoreError } from '../../iptables/iptables.ts';
import { ApplyError, type SyncReport } from '../../proxier/mode.ts';
import { createMetrics } from './metrics.ts';
import { observeSync, observeSyncError } from './sync-metrics.ts';
import { createUserspaceMetrics, observeUserspaceSync } from './userspace-metrics.ts';

const report = (over: Partial<SyncReport> = {}): SyncReport => ({
  family: 'IPv4',
  full: true,
  durationMs: 5,
  objects: new Map([
    ['filter', 4],
    ['nat', 20],
  ]),
  written: new Map([
    ['filter', 4],
    ['nat', 20],
  ]),
  bytes: 2000,
  noLocalEndpoints: { internal: 1, external: 2 },
  conntrackDeleted: 0,
  failures: [],
  ...over,
});

const restoreError = (): RestoreError => new RestoreError({ message: 'iptables-restore failed', exitCode: 1, stderr: '', line: null, context: '' });

describe('observeSync', () => {
  it('sets the rules owned and last written per table, the no-local-endpoint gauges, and times full and partial syncs and the conntrack reconciler', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    observeSync(m, 'iptables', report());
    observeSync(
      m,
      'iptables',
      report({
        full: false,
        durationMs: 2,
        written: new Map([
          ['filter', 0],
          ['nat', 3],
        ]),
        conntrackDeleted: 2,
        conntrackReconcileMs: 12,
      }),
    );
    const text = await m.registry.metrics();
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_total{table="nat",ip_family="IPv4"} 20');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_last{table="nat",ip_family="IPv4"} 3');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_last{table="filter",ip_family="IPv4"} 0');
    expect(text).toContain('kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external",ip_family="IPv4"} 2');
    expect(text).toContain('kubeproxy_sync_full_proxy_rules_duration_seconds_sum{ip_family="IPv4"} 0.005');
    expect(text).toContain('kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 2');
    expect(text).toContain('kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv4"} 2');
    // Timed only when the reconciler ran (the first report has no conntrackReconcileMs).
    expect(text).toContain('kubeproxy_conntrack_reconciler_sync_duration_seconds_count{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_conntrack_reconciler_sync_duration_seconds_sum{ip_family="IPv4"} 0.012');
  });

  it("adds every reconcile's deletions, none included, as CleanStaleEntries' ReconcileConntrackFlowsDeletedEntriesTotal.Add(float64(n)) does: the series exists once the reconciler ran", async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    observeSync(m, 'nftables', report({ family: 'IPv6', conntrackReconcileMs: 3 }));
    observeSync(m, 'iptables', report());
    const text = await m.registry.metrics();
    expect(text).toContain('kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv6"} 0');
    expect(text).toContain('kubeproxy_conntrack_reconciler_sync_duration_seconds_count{ip_family="IPv6"} 1');
    // The IPv4 sync did not run the reconciler (no UDP change): no series.
    expect(text).not.toContain('kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv4"}');
  });

  it('records nothing of a userspace sync but its listener failures, in its own series', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    const um = createUserspaceMetrics(m.registry);
    const r = report({ failures: [{ stage: 'listener', service: 'ns/web:http', message: 'port range exhausted' }] });
    observeSync(m, 'userspace', r);
    observeUserspaceSync(um, r);
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/^kubeproxy_sync_proxy_rules_(duration_seconds_count|iptables_total)\{/m);
    expect(text).toContain('kubeproxy_ts_userspace_listener_errors_total{service="ns/web:http"} 1');
  });
});

describe("each mode's series, as upstream's RegisterMetrics(mode) registers them", () => {
  const names = async (m: ReturnType<typeof createMetrics>) =>
    [...(await m.registry.metrics()).matchAll(/^# TYPE (kubeproxy_sync_\S+)/gm)].map((x) => x[1]).sort();
  const iptablesOnly = [
    'kubeproxy_sync_proxy_rules_iptables_last',
    'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
    'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
    'kubeproxy_sync_proxy_rules_iptables_total',
  ];
  const nftablesOnly = ['kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total', 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total'];

  const fullPartial = ['kubeproxy_sync_full_proxy_rules_duration_seconds', 'kubeproxy_sync_partial_proxy_rules_duration_seconds'];

  it('nftables mode: none of the iptables rule counts and restore failures, its own failures (and, unlike upstream, the full and partial sync latencies)', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false, mode: 'nftables' });
    observeSync(m, 'nftables', report());
    observeSync(m, 'nftables', report({ full: false }));
    const seen = await names(m);
    for (const n of iptablesOnly) expect(seen).not.toContain(n);
    for (const n of [...nftablesOnly, ...fullPartial]) expect(seen).toContain(n);
    expect(await m.registry.metrics()).toContain('kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"} 1');
  });

  it('iptables mode: its own families and none of the nftables ones; userspace mode: neither', async () => {
    const ipt = await names(createMetrics(new Registry(), { processMetrics: false, mode: 'iptables' }));
    for (const n of [...iptablesOnly, ...fullPartial]) expect(ipt).toContain(n);
    for (const n of nftablesOnly) expect(ipt).not.toContain(n);
    const us = await names(createMetrics(new Registry(), { processMetrics: false, mode: 'userspace' }));
    for (const n of [...iptablesOnly, ...nftablesOnly, ...fullPartial]) expect(us).not.toContain(n);
    expect(us).toContain('kubeproxy_sync_proxy_rules_last_timestamp_seconds');
  });
});

describe('observeSyncError', () => {
  it('counts a refused partial restore as a restore failure and a partial one, by its cause', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    observeSyncError(m, 'iptables', 'IPv4', new ApplyError('IPv4', false, restoreError()));
    observeSyncError(m, 'iptables', 'IPv6', new ApplyError('IPv6', true, restoreError()));
    observeSyncError(m, 'iptables', 'IPv4', new Error('iptables-save failed'));
    const text = await m.registry.metrics();
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total{ip_family="IPv4"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv6"} 1');
    expect(text).not.toContain('kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total{ip_family="IPv6"}');
    expect(text).toContain('kubeproxy_ts_sync_errors_total{ip_family="IPv4",reason="RestoreError"} 1');
    expect(text).toContain('kubeproxy_ts_sync_errors_total{ip_family="IPv4",reason="Error"} 1');
  });

  it('counts a refused nftables transaction and a failed stale-chain deletion (upstream NFTablesSyncFailuresTotal, NFTablesCleanupFailuresTotal)', async () => {
    const m = createMetrics(new Registry(), { processMetrics: false });
    observeSyncError(m, 'nftables', 'IPv6', new ApplyError('IPv6', false, new Error('nft: Error: Could not process rule')));
    observeSync(m, 'nftables', report({ failures: [{ stage: 'cleanup', message: 'cannot delete stale chains' }] }));
    observeSync(m, 'nftables', report());
    const text = await m.registry.metrics();
    expect(text).toContain('kubeproxy_sync_proxy_rules_nftables_sync_failures_total{ip_family="IPv6"} 1');
    expect(text).toContain('kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total{ip_family="IPv4"} 1');
    expect(text).not.toMatch(/kubeproxy_sync_proxy_rules_iptables_restore_failures_total\{/);
  });
});
