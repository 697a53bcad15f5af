/**
 * What the agent does with the proxier's news: health (queued and synced
 * times, node eligibility), upstream's metrics (sync reports through
 * servers/sync-metrics.ts, timestamps, network programming latency, change
 * counts, skipped objects), the health-check node ports of the services, and
 * a log line per skipped object, per change of the ServiceCIDRs, when the
 * node's own Node object is missing (a wrong --hostname-override, a node not
 * registered yet) or appears, and (--detect-local-mode=NodeCIDR) when it has
 * no podCIDR or gets one.
 */
import { epochMs, type Clock } from '../proxier/clock.ts';
import type { Logger } from '../proxier/log.ts';
import type { OutsideChange, ProxyMode } from '../proxier/mode.ts';
import type { ProxierHooks } from '../proxier/proxier.ts';
import { formatProblem, type IPFamily, type NodeInfo, type Snapshot } from '../proxier/types.ts';
import { missingNodeMessage } from './desired.ts';
import type { HealthState } from './servers/health-state.ts';
import type { Metrics } from './servers/metrics.ts';
import { healthTargets, type ServiceHealthServers } from './servers/service-health.ts';
import { observeSync, observeSyncError } from './servers/sync-metrics.ts';
import { observeUserspaceSync, type UserspaceMetrics } from './servers/userspace-metrics.ts';

export interface HookTargets {
  readonly mode: ProxyMode;
  readonly metrics: Metrics;
  readonly userspaceMetrics: UserspaceMetrics | null;
  readonly health: HealthState;
  readonly serviceHealth: ServiceHealthServers;
  /** Where each service's healthCheckNodePort server listens, given each family's last snapshot (else the servers' default). */
  readonly serviceHealthHosts?: (snapshots: readonly Snapshot[]) => ReadonlyMap<string, readonly string[]>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** --detect-local-mode: with NodeCIDR, the agent says when its Node has no podCIDR. */
  readonly detectLocalMode?: string;
  /** Run after each successful sync (the conntrack values nf_conntrack was not loaded for at start). */
  readonly afterSync?: () => void;
  /** Told of the outside change a periodic sync found (it was full); the agent's reporter counts and logs it. */
  readonly outsideChange?: (change: OutsideChange) => void;
}

export function proxierHooks(t: HookTargets): ProxierHooks {
  const { metrics, health, mode } = t;
  let counted = { services: 0, endpoints: 0 };
  /** Each family's last synced snapshot, for the healthCheckNodePort servers. */
  const lastSnapshots = new Map<IPFamily, Snapshot>();
  /** Whether the agent has said its Node is missing (said once per absence; said again when it appears). */
  let nodeMissingSaid = false;
  const nodeMissing = (name: string, how: string): void => {
    nodeMissingSaid = true;
    t.logger.warn({ node: name }, `${missingNodeMessage(name, how, mode.name)} (is --hostname-override right?)`);
  };
  /** Whether a missing podCIDR was said (NodeCIDR mode; as upstream's waitForPodCIDR, any family will do); said again when one appears. */
  let podCIDRMissingSaid = false;
  const checkPodCIDRs = (node: NodeInfo): void => {
    if (t.detectLocalMode !== 'NodeCIDR' || !node.known) return;
    if (node.podCIDRs.length === 0 && !podCIDRMissingSaid) {
      podCIDRMissingSaid = true;
      t.logger.warn(
        { node: node.name },
        `--detect-local-mode=NodeCIDR: Node "${node.name}" has no podCIDR (yet): no local-traffic detection until it has one (upstream waits for it before it proxies)`,
      );
    } else if (node.podCIDRs.length > 0 && podCIDRMissingSaid) {
      podCIDRMissingSaid = false;
      t.logger.info(
        { node: node.name },
        `Node "${node.name}" has podCIDR ${node.podCIDRs.join(', ')}: local traffic is detected by it from the next sync`,
      );
    }
  };
  return {
    queued: (f) => {
      health.queuedUpdate(f);
      metrics.syncProxyRulesLastQueuedTimestamp.set({ ip_family: f }, epochMs(t.clock, t.clock.now()) / 1000);
    },
    synced: (f, r) => {
      health.updated(f);
      // Every source lists the Nodes before the first sync; a Node that is not there by then is missing.
      if (!r.snapshot.node.known && !nodeMissingSaid) nodeMissing(r.snapshot.node.name, 'among the Nodes');
      checkPodCIDRs(r.snapshot.node);
      t.afterSync?.();
      if (r.report.outsideChange) t.outsideChange?.(r.report.outsideChange);
      const now = t.clock.now();
      metrics.syncProxyRulesLastTimestamp.set({ ip_family: f }, epochMs(t.clock, now) / 1000);
      for (const time of r.triggerTimes) metrics.networkProgrammingLatency.observe({ ip_family: f }, (now - time) / 1000);
      // Every family's services: an IPv6-only eTP Local service on an IPv4-primary node has its server too.
      lastSnapshots.set(f, r.snapshot);
      const snapshots = [...lastSnapshots.values()];
      void t.serviceHealth.sync(healthTargets(snapshots), t.serviceHealthHosts?.(snapshots));
      observeSync(metrics, mode.name, r.report);
      if (t.userspaceMetrics) observeUserspaceSync(t.userspaceMetrics, r.report);
    },
    syncFailed: (f, err) => observeSyncError(metrics, mode.name, f, err),
    problem: (p) => {
      metrics.objectProblemsTotal.inc({ kind: p.kind });
      const object = p.namespace ? `${p.kind} ${p.namespace}/${p.name}` : `${p.kind} ${p.name}`;
      t.logger.warn({ object, field: p.field }, `skipped: ${formatProblem(p)}`);
    },
    // Which ranges the nftables mode now drops unallocated ClusterIPs in (upstream logs this at -v 4 only).
    serviceCIDRsChanged: (cidrs) => {
      // The other modes do not use them (--objects files may hold them in any mode).
      if (mode.name === 'nftables')
        t.logger.info({ IPv4: cidrs.IPv4, IPv6: cidrs.IPv6 }, `ServiceCIDRs changed: ${[...cidrs.IPv4, ...cidrs.IPv6].join(', ') || 'none'}`);
    },
    nodeChanged: (node) => {
      health.syncNode(node);
      checkPodCIDRs(node);
      if (node.known && nodeMissingSaid) {
        nodeMissingSaid = false;
        t.logger.info({ node: node.name }, `Node "${node.name}" found: its addresses, zone and pod CIDR apply from the next sync`);
      } else if (!node.known && !nodeMissingSaid) nodeMissing(node.name, 'any more (deleted)');
    },
    changes: (pending, total) => {
      metrics.serviceChangesPending.set(pending.services);
      metrics.endpointChangesPending.set(pending.endpoints);
      metrics.serviceChangesTotal.inc(total.services - counted.services);
      metrics.endpointChangesTotal.inc(total.endpoints - counted.endpoints);
      counted = { ...total };
    },
  };
}
