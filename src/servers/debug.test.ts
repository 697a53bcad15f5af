/**
 * The /debug pages' content, pure: the rules record as text (applied rules
 * as valid restore input, the refused input commented with its error and
 * line) and the services table (endpoint states, what is not used and why,
 * the mode's objects, traffic when counted).
 */
import { describe, expect, it } from 'vitest';
import type { ModeInspection } from '../../proxier/mode.ts';
import { RulesRecord } from '../../proxier/rules-record.ts';
import type { IPFamily } from '../../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../../test/domain.ts';
import { formatServicesTable, servicesTable } from './debug-services.ts';
import { formatRules, formatTraffic, trafficPage } from './debug.ts';

describe('/debug/rules text', () => {
  it('prints the applied rules as tool input between comment lines, and the refused input commented with its error and line', () => {
    const rec = new RulesRecord('iptables-restore', ['IPv4', 'IPv6']);
    rec.applied('IPv4', { at: Date.UTC(2026, 0, 2, 3, 4, 5), full: true, bytes: 42, text: () => '*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n' });
    rec.refused('IPv4', Date.UTC(2026, 0, 2, 3, 4, 6), {
      full: false,
      message: 'iptables-restore: line 2 failed\nChain in use',
      input: '*nat\n-X KUBE-SEP-X\nCOMMIT\n',
      line: 2,
    });
    const text = formatRules('iptables', rec.list());
    expect(text).toContain('# IPv4: applied at 2026-01-02T03:04:05.000Z by a full sync (42 bytes written)');
    expect(text).toContain('\n*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n');
    expect(text).toContain('# IPv4: REFUSED at 2026-01-02T03:04:06.000Z (partial sync):\n# iptables-restore: line 2 failed\n# Chain in use\n');
    expect(text).toContain('# the line it named, 2: -X KUBE-SEP-X');
    expect(text).toContain('# -X KUBE-SEP-X\n# COMMIT\n');
    expect(text).toContain('# IPv6: nothing applied yet\n# IPv6: no refused input');
    // Every line outside the applied rules is a comment: the page minus the refused part is restore input.
    const nonComment = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(nonComment).toEqual(['*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT']);
  });
});

describe('/debug/services table', () => {
  const sp = servicePort({ key: 'ns1/web:http', namespace: 'ns1', name: 'web', clusterIP: '10.96.0.10', port: 80, nodePort: 30080 });
  const ready = endpoint('10.244.1.5', { port: 8080, nodeName: 'node-1', isLocal: true });
  const terminating = endpoint('10.244.2.5', { port: 8080, nodeName: 'node-2', ready: false, serving: true, terminating: true });
  const state = { ...portState(sp, [ready, terminating]), selection: { ...portState(sp, [ready]).selection } };
  const inspect: ModeInspection = {
    rules: () => [],
    objectsOf: () => ({ service: ['KUBE-SVC-AAA', 'KUBE-EXT-AAA'], endpoints: new Map([['10.244.1.5:8080', 'KUBE-SEP-BBB']]) }),
    traffic: () => [{ service: 'ns1/web:http', endpoint: '10.244.1.5:8080', packets: 12, bytes: 720 }],
  };

  it("shows each endpoint's state, whether it is used, its chain and its traffic", () => {
    const table = servicesTable(['IPv4', 'IPv6'], (f) => (f === 'IPv4' ? snapshotOf([state]) : null), inspect);
    expect(table[1]).toEqual({ family: 'IPv6', synced: false, services: [] });
    expect(table[0]!.services[0]!.endpoints).toEqual([
      { endpoint: '10.244.1.5:8080', state: 'ready', node: 'node-1', local: true, used: true, object: 'KUBE-SEP-BBB', packets: 12, bytes: 720 },
      {
        endpoint: '10.244.2.5:8080',
        state: 'serving-terminating',
        node: 'node-2',
        local: false,
        used: false,
        object: null,
        packets: null,
        bytes: null,
      },
    ]);
    expect(formatServicesTable(table, true)).toBe(
      [
        '# IPv4: 1 service port(s) as of the last successful sync',
        'ns1/web:http TCP 10.96.0.10:80 nodePort 30080',
        '  KUBE-SVC-AAA KUBE-EXT-AAA',
        '  10.244.1.5:8080  ready                node-1 (local)  KUBE-SEP-BBB  12 pkts  720 bytes',
        '  10.244.2.5:8080  serving-terminating  node-2          not used      -        -',
        '# IPv6: not synced yet',
        '',
      ].join('\n'),
    );
  });

  it('says why a service port sends nowhere (upstream: REJECT without endpoints, DROP for Local without local ones)', () => {
    const none = portState(servicePort({ key: 'ns1/empty' }), []);
    const localOnly = {
      ...portState(servicePort({ key: 'ns1/local', externalPolicyLocal: true }), [terminating]),
      selection: { cluster: null, local: [], allReachable: [], hasAny: true, topologyReason: null },
    };
    const text = formatServicesTable(
      servicesTable(['IPv4'], () => snapshotOf([none, localOnly]), { rules: () => [], objectsOf: () => null, traffic: () => null }),
      false,
    );
    expect(text).toContain('ns1/empty TCP');
    expect(text).toContain('  (nothing programmed)\n  no usable endpoint: rejected\n  (no endpoints)');
    expect(text).toContain('  no local endpoint: dropped (traffic policy Local)\n  10.244.2.5:8080  serving-terminating  node-2  not used\n');
  });
});

describe('/debug/traffic', () => {
  const traffic = [
    { service: 'ns1/web:http', endpoint: '[fd00:10:244::5]:8080', packets: 3, bytes: 180 },
    { service: 'ns1/web:http', endpoint: '10.244.1.5:8080', packets: 12, bytes: 720 },
    { service: 'ns1/dns:dns', endpoint: '10.244.1.9:53', packets: 1, bytes: 60 },
  ];
  const inspect = (over: Partial<ModeInspection> = {}): ModeInspection => ({
    rules: () => [],
    objectsOf: () => null,
    traffic: () => traffic,
    ...over,
  });

  it("answers a family's endpoints, by service then endpoint; a mode without readTraffic answers its last reading, and says when it was taken", async () => {
    // The mode's clock reads 5000 at 2026-12-05T10:00:05Z; IPv6 was never read.
    const clock = { epochMs: (reading: number) => Date.parse('2026-12-05T10:00:00Z') + reading };
    const readAt = (family: IPFamily) => (family === 'IPv4' ? 5000 : null);
    const src = { mode: 'iptables', families: ['IPv6', 'IPv4'], inspect: inspect({ trafficReadAt: readAt }), clock } as const;
    const v4 = await trafficPage(src, ['IPv4']);
    expect(v4).toEqual({
      mode: 'iptables',
      families: ['IPv6', 'IPv4'],
      counting: true,
      readNow: false,
      failures: [],
      readAt: { IPv4: '2026-12-05T10:00:05.000Z' },
      endpoints: [traffic[2], traffic[1]],
    });
    const both = await trafficPage(src, ['IPv6', 'IPv4']);
    expect(both.readAt).toEqual({ IPv6: null, IPv4: '2026-12-05T10:00:05.000Z' });
    expect(formatTraffic(both)).toMatch(/^# kube-proxy-ts .*\n# IPv6: not read yet\n# IPv4: read at 2026-12-05T10:00:05\.000Z\nSERVICE /);
    expect((await trafficPage({ mode: 'iptables', families: ['IPv6', 'IPv4'], inspect: inspect() }, ['IPv6'])).endpoints).toEqual([traffic[0]]);
    expect(formatTraffic(v4)).toBe(
      '# kube-proxy-ts iptables mode: packets and bytes per endpoint since the agent started counting (its last reading)\n' +
        '# IPv4: read at 2026-12-05T10:00:05.000Z\n' +
        'SERVICE       ENDPOINT         PACKETS  BYTES\n' +
        'ns1/dns:dns   10.244.1.9:53    1        60\n' +
        'ns1/web:http  10.244.1.5:8080  12       720\n',
    );
  });

  it('reads for the answer when the mode can (nftables), names a family it could not read, and says when the agent counts nothing', async () => {
    let reads = 0;
    const fresh = inspect({
      readTraffic: async () => (
        reads++,
        { traffic: traffic.map((t) => ({ ...t, packets: t.packets + 1 })), failures: ['IPv6: Error: Could not process rule'] }
      ),
    });
    const page = await trafficPage({ mode: 'nftables', families: ['IPv4'], inspect: fresh }, ['IPv4', 'IPv6']);
    expect(reads).toBe(1);
    expect(page.readNow).toBe(true);
    expect(page.endpoints.map((e) => e.packets)).toEqual([2, 13, 4]);
    // A family nft could not read is named, on its page only; its figures are its last reading's.
    expect(page.failures).toEqual(['IPv6: Error: Could not process rule']);
    expect(formatTraffic(page)).toContain("\n# NOT READ, its figures are the last reading's: IPv6: Error: Could not process rule\nSERVICE ");
    expect((await trafficPage({ mode: 'nftables', families: ['IPv4'], inspect: fresh }, ['IPv4'])).failures).toEqual([]);
    const off = await trafficPage(
      { mode: 'nftables', families: ['IPv4'], inspect: inspect({ traffic: () => null, readTraffic: async () => ({ traffic: null, failures: [] }) }) },
      ['IPv4'],
    );
    expect(off).toEqual({ mode: 'nftables', families: ['IPv4'], counting: false, readNow: false, failures: [], readAt: {}, endpoints: [] });
    expect(formatTraffic(await trafficPage({ mode: 'userspace', families: ['IPv4'], inspect: undefined }, ['IPv4']))).toBe(
      '# kube-proxy-ts userspace mode counts no traffic per endpoint: the agent runs without --traffic-counters (userspace mode has no rules to count; see kubeproxy_ts_userspace_*)\n',
    );
  });
});
