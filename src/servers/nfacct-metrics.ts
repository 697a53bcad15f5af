/**
 * Upstream's nfacct metrics of the iptables mode (pkg/proxy/metrics: newCTStateInvalidPacketsCollector,
 * newLocalhostNodePortAcceptedPacketsCollector): the packets of the node's ct_state_invalid_dropped_pkts and
 * localhost_nps_accepted_pkts counters, read at each scrape. As upstream's collector, a counter that cannot be read
 * gives no sample (an error line says why), so a dashboard shows a gap rather than a zero.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../proxier/log.ts';
import { CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED } from '../../iptables/nfacct.ts';
import { ALPHA } from './metrics.ts';

const METRICS = [
  {
    name: 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total',
    help: 'packets dropped by iptables to work around conntrack problems',
    counter: CT_STATE_INVALID_DROPPED,
  },
  {
    name: 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
    help: 'Number of packets accepted on nodeports of loopback interface',
    counter: LOCALHOST_NODEPORTS_ACCEPTED,
  },
] as const;

export function registerNfacctMetrics(registry: Registry, read: () => Promise<ReadonlyMap<string, number>>, logger: Logger): void {
  // One reading serves both metrics of a scrape: the registry asks them together, while the first is in flight.
  let pending: Promise<ReadonlyMap<string, number> | null> | null = null;
  const reading = (): Promise<ReadonlyMap<string, number> | null> =>
    (pending ??= read()
      .catch((err: unknown) => {
        logger.error({ err }, 'failed to collect nfacct counters');
        return null;
      })
      .finally(() => (pending = null)));
  for (const m of METRICS) {
    registry.registerMetric({
      name: m.name,
      help: ALPHA + m.help,
      type: 'counter',
      aggregator: 'sum',
      async get() {
        const packets = (await reading())?.get(m.counter);
        return {
          name: m.name,
          help: ALPHA + m.help,
          type: 'counter',
          aggregator: 'sum',
          values: packets === undefined ? [] : [{ value: packets, labels: {} }],
        };
      },
      reset() {},
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}
