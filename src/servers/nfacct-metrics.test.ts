import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../proxier/log.ts';
import { registerNfacctMetrics } from './nfacct-metrics.ts';

describe('the nfacct metrics (upstream pkg/proxy/metrics newCTStateInvalidPacketsCollector, newLocalhostNodePortAcceptedPacketsCollector)', () => {
  function setup(read: () => Promise<ReadonlyMap<string, number>>) {
    const registry = new Registry();
    const errors: string[] = [];
    const logger = { error: (fields: { err: Error }, msg: string) => void errors.push(`${msg}: ${fields.err.message}`) } as unknown as Logger;
    let reads = 0;
    registerNfacctMetrics(
      registry,
      () => {
        reads++;
        return read();
      },
      logger,
    );
    const samples = async () => (await registry.metrics()).split('\n').filter((l) => l.startsWith('kubeproxy_iptables_'));
    return { registry, errors, samples, reads: () => reads };
  }

  it('exports each counter the node has as a counter, read once per scrape', async () => {
    const s = setup(
      async () =>
        new Map([
          ['ct_state_invalid_dropped_pkts', 12],
          ['localhost_nps_accepted_pkts', 3],
        ]),
    );
    expect(await s.samples()).toEqual([
      'kubeproxy_iptables_ct_state_invalid_dropped_packets_total 12',
      'kubeproxy_iptables_localhost_nodeports_accepted_packets_total 3',
    ]);
    expect(s.reads()).toBe(1);
    await s.samples();
    expect(s.reads()).toBe(2);
    expect(await s.registry.metrics()).toContain(
      '# HELP kubeproxy_iptables_ct_state_invalid_dropped_packets_total [ALPHA] packets dropped by iptables to work around conntrack problems\n# TYPE kubeproxy_iptables_ct_state_invalid_dropped_packets_total counter',
    );
  });

  it('gives no sample for a counter that is missing or cannot be read (a gap, not a zero), and says why it could not read', async () => {
    const missing = setup(async () => new Map([['ct_state_invalid_dropped_pkts', 5]]));
    expect(await missing.samples()).toEqual(['kubeproxy_iptables_ct_state_invalid_dropped_packets_total 5']);
    const failing = setup(() => Promise.reject(new Error('nfacct list exited with code 1: nfacct v1.0.2: error: Operation not permitted')));
    expect(await failing.samples()).toEqual([]);
    expect(failing.errors).toEqual([
      'failed to collect nfacct counters: nfacct list exited with code 1: nfacct v1.0.2: error: Operation not permitted',
    ]);
  });
});
