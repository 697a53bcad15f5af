import { describe, expect, it } from 'vitest';
import { conntrackArgs, conntrackReconcileNeeded, parseConntrackList, staleConntrackFilters, type ConntrackEntry } from './conntrack-plan.ts';
import type { ServicePort, ServicePortState } from './types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';

const sp = (over: Partial<ServicePort> = {}) =>
  servicePort({ key: 'ns/dns:dns', namespace: 'ns', name: 'dns', portName: 'dns', protocol: 'UDP', clusterIP: '172.30.0.10', port: 53, ...over });
const ep = (ip: string, over: Parameters<typeof endpoint>[1] = {}) => endpoint(ip, { port: 5353, ...over });
const st = portState;
const snap = (...services: ServicePortState[]) => snapshotOf(services);
/**
 * A client's flow to dst:port, answered by `reply`:`replyPort` (the endpoint it was DNATed to, by default on the
 * endpoints' port, or dst itself when nothing did).
 */
const flow = (dst: string, port: number, reply: string, clientPort = 40053, replyPort = 5353): ConntrackEntry => ({
  origSrc: '10.9.0.1',
  origDst: dst,
  origSrcPort: clientPort,
  origDstPort: port,
  replySrc: reply,
  replySrcPort: replyPort,
});
const args = (entries: ConntrackEntry[], ...services: ServicePortState[]) => staleConntrackFilters(entries, snap(...services)).map(conntrackArgs);

describe('parseConntrackList (the output of conntrack -L -p udp, conntrack-tools 1.4.7)', () => {
  it('reads the original and reply tuples of each entry and skips the summary', () => {
    const out = [
      'udp      17 29 src=172.30.0.40 dst=172.30.0.40 sport=40053 dport=53 [UNREPLIED] src=127.0.0.1 dst=172.30.0.40 sport=8080 dport=40053 mark=0 use=1',
      'udp      17 117 src=10.244.1.2 dst=172.30.0.10 sport=41000 dport=53 src=10.244.2.5 dst=10.244.1.2 sport=5353 dport=41000 [ASSURED] mark=0 zone=3 use=1',
      'udp      17 25 src=fd00::0:1 dst=fd00:30::10 sport=5000 dport=53 src=fd00:244::5 dst=fd00::1 sport=5353 dport=5000 mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
      '',
    ].join('\n');
    expect(parseConntrackList(out)).toEqual([
      { origSrc: '172.30.0.40', origDst: '172.30.0.40', origSrcPort: 40053, origDstPort: 53, replySrc: '127.0.0.1', replySrcPort: 8080 },
      { origSrc: '10.244.1.2', origDst: '172.30.0.10', origSrcPort: 41000, origDstPort: 53, replySrc: '10.244.2.5', replySrcPort: 5353 },
      { origSrc: 'fd00::1', origDst: 'fd00:30::10', origSrcPort: 5000, origDstPort: 53, replySrc: 'fd00:244::5', replySrcPort: 5353 },
    ]);
  });

  it('reads entries that carry counters (net.netfilter.nf_conntrack_acct=1), as conntrack-tools 1.4.7 prints them', () => {
    const out = [
      'udp      17 29 src=10.9.0.1 dst=172.30.0.10 sport=41000 dport=53 packets=1 bytes=30 [UNREPLIED] src=10.244.2.5 dst=10.9.0.1 sport=5353 dport=41000 packets=0 bytes=0 mark=0 use=1',
      'udp      17 117 src=10.9.0.1 dst=172.30.0.10 sport=41001 dport=53 packets=4 bytes=120 src=10.244.2.6 dst=10.9.0.1 sport=5353 dport=41001 packets=4 bytes=200 [ASSURED] mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.',
    ].join('\n');
    expect(parseConntrackList(out)).toEqual([
      { origSrc: '10.9.0.1', origDst: '172.30.0.10', origSrcPort: 41000, origDstPort: 53, replySrc: '10.244.2.5', replySrcPort: 5353 },
      { origSrc: '10.9.0.1', origDst: '172.30.0.10', origSrcPort: 41001, origDstPort: 53, replySrc: '10.244.2.6', replySrcPort: 5353 },
    ]);
  });

  it('skips lines it cannot read whole (another protocol, a cut-off line)', () => {
    expect(
      parseConntrackList(
        'tcp      6 431999 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1\nudp      17 29 src=1.1.1.1 dst=2.2.2.2 sport=1',
      ),
    ).toEqual([]);
  });
});

describe('staleConntrackFilters (upstream CleanStaleEntries, conntrack/cleanup.go)', () => {
  it('deletes flows to a service IP and port answered by an address that is not a serving endpoint, for every service IP', () => {
    const svc = sp({ externalIPs: ['192.168.99.1'], loadBalancerVIPs: ['192.168.100.1'] });
    const entries = [
      flow('172.30.0.10', 53, '10.0.0.1'),
      flow('172.30.0.10', 53, '10.0.0.2'),
      flow('192.168.99.1', 53, '10.0.0.1'),
      flow('192.168.100.1', 53, '10.0.0.1'),
    ];
    expect(args(entries, st(svc, [ep('10.0.0.2')]))).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dport', '53', '--reply-src', '10.0.0.1', '--reply-port-src', '5353'],
      ['-D', '-p', 'udp', '--orig-dst', '192.168.99.1', '--dport', '53', '--reply-src', '10.0.0.1', '--reply-port-src', '5353'],
      ['-D', '-p', 'udp', '--orig-dst', '192.168.100.1', '--dport', '53', '--reply-src', '10.0.0.1', '--reply-port-src', '5353'],
    ]);
  });

  it('deletes flows to the node port on any address answered by a non-serving address', () => {
    const svc = sp({ nodePort: 30053 });
    const entries = [flow('192.168.50.11', 30053, '10.0.0.1'), flow('192.168.50.12', 30053, '10.0.0.1'), flow('192.168.50.11', 30053, '10.0.0.2')];
    expect(args(entries, st(svc, [ep('10.0.0.2')]))).toEqual([
      ['-D', '-p', 'udp', '--dport', '30053', '--reply-src', '10.0.0.1', '--reply-port-src', '5353'],
    ]);
  });

  it('deletes flows answered by a serving endpoint IP on a port it no longer serves: a target port change (upstream #130542, reply source IP and port)', () => {
    const svc = sp({ nodePort: 30053 });
    // The Service's targetPort moved from 53 to 5353 (a hostNetwork DaemonSet, or pods that keep their IPs): same endpoint IPs.
    const entries = [
      flow('172.30.0.10', 53, '10.0.0.1', 40053, 53),
      flow('172.30.0.10', 53, '10.0.0.1', 40054, 5353),
      flow('192.168.50.11', 30053, '10.0.0.1', 40055, 53),
      flow('192.168.50.11', 30053, '10.0.0.1', 40056, 5353),
    ];
    expect(args(entries, st(svc, [ep('10.0.0.1')]))).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dport', '53', '--reply-src', '10.0.0.1', '--reply-port-src', '53'],
      ['-D', '-p', 'udp', '--dport', '30053', '--reply-src', '10.0.0.1', '--reply-port-src', '53'],
    ]);
  });

  it('one deletion per destination and reply source, however many client flows share them', () => {
    const entries = [1, 2, 3].map((k) => flow('172.30.0.10', 53, '10.0.0.1', 40000 + k));
    expect(args(entries, st(sp(), [ep('10.0.0.2')]))).toHaveLength(1);
  });

  it('keeps flows answered by any serving endpoint, terminating ones included, whatever this node selects (policies and topology ignored, as upstream)', () => {
    const entries = [flow('172.30.0.10', 53, '10.0.0.1'), flow('172.30.0.10', 53, '10.0.0.2'), flow('172.30.0.10', 53, '10.0.0.3')];
    const eps = [
      ep('10.0.0.1'),
      ep('10.0.0.2', { ready: false, terminating: true }),
      ep('10.0.0.3', { ready: false, serving: false, terminating: true }),
    ];
    const state: ServicePortState = { ...st(sp(), eps), selection: { ...st(sp(), eps).selection, cluster: [eps[0]!], allReachable: [eps[0]!] } };
    expect(args(entries, state)).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dport', '53', '--reply-src', '10.0.0.3', '--reply-port-src', '5353'],
    ]);
  });

  it('deletes every flow of a port with no serving endpoint, rejected ones too (upstream #139629)', () => {
    const entries = [flow('172.30.0.10', 53, '10.0.0.1'), flow('172.30.0.10', 53, '172.30.0.10', 40053, 53)];
    expect(args(entries, st(sp(), [ep('10.0.0.1', { ready: false, serving: false })]))).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dport', '53', '--reply-src', '10.0.0.1', '--reply-port-src', '5353'],
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dport', '53', '--reply-src', '172.30.0.10', '--reply-port-src', '53'],
    ]);
    expect(staleConntrackFilters(entries, snap(st(sp(), [])))[0]!.reason).toBe('ns/dns:dns: UDP service port has no serving endpoint');
  });

  it('leaves flows to other ports of a service IP, to TCP service ports and to unknown addresses alone', () => {
    const tcp = sp({ key: 'ns/web:http', protocol: 'TCP', clusterIP: '172.30.0.20', port: 80 });
    const entries = [flow('172.30.0.10', 54, '10.0.0.1'), flow('172.30.0.20', 80, '10.0.0.1'), flow('8.8.8.8', 53, '8.8.8.8')];
    expect(args(entries, st(sp(), [ep('10.0.0.2')]), st(tcp, [ep('10.0.0.5')]))).toEqual([]);
  });

  it('compares IPv6 addresses in canonical form and deletes with -f ipv6', () => {
    const v6 = sp({ clusterIP: 'fd00:30::10' });
    const filters = staleConntrackFilters([flow('fd00:30::10', 53, 'fd00:244::5'), flow('fd00:30::10', 53, 'fd00:244::6')], {
      ...snap(st(v6, [ep('fd00:244:0::6')])),
      family: 'IPv6',
    });
    expect(filters.map(conntrackArgs)).toEqual([
      ['-D', '-p', 'udp', '-f', 'ipv6', '--orig-dst', 'fd00:30::10', '--dport', '53', '--reply-src', 'fd00:244::5', '--reply-port-src', '5353'],
    ]);
  });
});

describe('conntrackReconcileNeeded (upstream: after a sync in which a UDP service port changed)', () => {
  const udp = st(sp(), [ep('10.0.0.1')]);
  const tcp = st(sp({ key: 'ns/web:http', protocol: 'TCP' }), [ep('10.0.0.5')]);

  it('after the first sync when there is a UDP service port (a restart reconciles instead of flushing, #122740)', () => {
    expect(conntrackReconcileNeeded(null, snap(udp, tcp))).toBe(true);
    expect(conntrackReconcileNeeded(null, snap(tcp))).toBe(false);
  });

  it('when a UDP service port changed, came or went; not for TCP changes or an unchanged state', () => {
    expect(conntrackReconcileNeeded(snap(udp, tcp), snap(udp, tcp))).toBe(false);
    expect(conntrackReconcileNeeded(snap(udp, tcp), snap(udp, st(tcp.service, [])))).toBe(false);
    expect(conntrackReconcileNeeded(snap(udp), snap(st(sp(), [ep('10.0.0.2')])))).toBe(true);
    expect(conntrackReconcileNeeded(snap(udp), snap())).toBe(true);
    expect(conntrackReconcileNeeded(snap(), snap(udp))).toBe(true);
  });
});
