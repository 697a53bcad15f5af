import { describe, expect, it } from 'vitest';
import { parseSave } from './parse-save.ts';
import type { Ruleset } from './ruleset.ts';
import { KUBE_PROXY_RULES, KUBE_PROXY_RULES_SAVED } from './trace.case.ts';
import type { TracePacket, TraceResult } from '../proxier/trace-result.ts';
import { trace } from './trace.ts';

const NODE = '192.168.0.2';
const OPTS = { localAddresses: [NODE] };
const written = parseSave(KUBE_PROXY_RULES, 'IPv4');
const live = parseSave(KUBE_PROXY_RULES_SAVED, 'IPv4');

const fromPod = (dst: string, dport: number, src = '10.0.0.5'): TracePacket => ({
  src,
  dst,
  dport,
  protocol: 'TCP',
  origin: 'external',
  inInterface: 'cbr0',
});
const fromNode = (dst: string, dport: number): TracePacket => ({ src: NODE, dst, dport, protocol: 'TCP', origin: 'local' });
const fromOutside = (dst: string, dport: number): TracePacket => ({
  src: '203.0.113.7',
  dst,
  dport,
  protocol: 'TCP',
  origin: 'external',
  inInterface: 'eth0',
});

/** The upstream flow-test view of a trace: DNAT targets (or the verdict), masquerade. */
const summary = (r: TraceResult<unknown>) => ({ endpoints: r.endpoints, verdict: r.verdict, masquerade: r.masquerade });

describe.each([
  ['as kube-proxy writes them', written],
  ['as iptables-nft-save prints them back from a namespace', live],
])('kube-proxy rules %s', (_name, rules: Ruleset) => {
  it('spreads a ClusterIP over its 3 endpoints, 1/3 each, pod source not masqueraded', () => {
    const r = trace(rules, fromPod('172.30.0.41', 80), OPTS);
    expect(summary(r)).toEqual({ endpoints: ['10.180.0.1:80', '10.180.0.2:80', '10.180.0.3:80'], verdict: 'ACCEPT', masquerade: false });
    expect(r.branches.map((b) => b.dnat?.ip)).toEqual(['10.180.0.1', '10.180.0.2', '10.180.0.3']);
    for (const b of r.branches) expect(b.probability).toBeCloseTo(1 / 3, 8);
    expect(r.warnings).toEqual([]);
  });

  it('masquerades a ClusterIP connection from the node and from outside the cluster', () => {
    expect(summary(trace(rules, fromNode('172.30.0.41', 80), OPTS))).toMatchObject({ verdict: 'ACCEPT', masquerade: true });
    const outside = trace(rules, fromOutside('172.30.0.41', 80), OPTS);
    expect(summary(outside)).toMatchObject({ verdict: 'ACCEPT', masquerade: true });
    // The mark set in KUBE-MARK-MASQ is what KUBE-FORWARD and KUBE-POSTROUTING test.
    expect(outside.branches[0]!.steps.map((s) => `${s.table}/${s.chain}#${s.index}`)).toEqual([
      'nat/PREROUTING#1',
      'nat/KUBE-SERVICES#1',
      'nat/KUBE-SVC-XPGD46QRK7WJZT7O#1',
      'nat/KUBE-MARK-MASQ#1',
      'nat/KUBE-SVC-XPGD46QRK7WJZT7O#2',
      'nat/KUBE-SEP-SXIVWICOYRO3J4NJ#2',
      'filter/FORWARD#1',
      'filter/FORWARD#2',
      'filter/KUBE-FORWARD#2',
      'nat/POSTROUTING#1',
      'nat/KUBE-POSTROUTING#2',
      'nat/KUBE-POSTROUTING#3',
    ]);
  });

  it('masquerades the hairpin: a pod reaching itself through its service', () => {
    const r = trace(rules, fromPod('172.30.0.41', 80, '10.180.0.1'), OPTS);
    expect(r.masquerade).toBe('mixed');
    expect(r.branches.map((b) => [b.dnat?.ip, b.masquerade])).toEqual([
      ['10.180.0.1', true],
      ['10.180.0.2', false],
      ['10.180.0.3', false],
    ]);
  });

  it('rejects a service without endpoints in filter KUBE-SERVICES, from pods and from the node', () => {
    for (const p of [fromPod('172.30.0.43', 80), fromNode('172.30.0.43', 80)]) {
      const r = trace(rules, p, OPTS);
      expect(summary(r)).toEqual({ endpoints: [], verdict: 'REJECT', masquerade: false });
      expect(r.branches[0]!.steps.at(-1)).toMatchObject({ table: 'filter', chain: 'KUBE-SERVICES', index: 1 });
    }
  });

  it('rejects a NodePort without endpoints through filter INPUT', () => {
    const r = trace(rules, fromOutside(NODE, 3003), OPTS);
    expect(r.verdict).toBe('REJECT');
    expect(r.branches[0]!.end).toBe('filter KUBE-EXTERNAL-SERVICES rule 1: REJECT');
  });

  it('drops a service whose endpoints are all on other nodes (internalTrafficPolicy Local)', () => {
    expect(trace(rules, fromPod('172.30.0.45', 80), OPTS).verdict).toBe('DROP');
  });

  it('reaches a NodePort via addrtype LOCAL -> KUBE-NODEPORTS, masqueraded', () => {
    const r = trace(rules, fromOutside(NODE, 3001), OPTS);
    expect(summary(r)).toEqual({ endpoints: ['10.180.0.2:80'], verdict: 'ACCEPT', masquerade: true });
    expect(r.branches[0]!.steps.map((s) => s.chain).slice(0, 4)).toEqual([
      'PREROUTING',
      'KUBE-SERVICES',
      'KUBE-NODEPORTS',
      'KUBE-EXT-GNZBNJ2PO5MGZ6GT',
    ]);
    // Port 3001 on an address that is not the node's is not a NodePort.
    expect(summary(trace(rules, fromOutside('192.168.0.99', 3001), OPTS))).toEqual({ endpoints: [], verdict: 'ACCEPT', masquerade: false });
  });

  it('follows ClientIP affinity only for clients in the recent list', () => {
    const fresh = trace(rules, fromPod('172.30.0.44', 80), OPTS);
    expect(fresh.branches.map((b) => [b.dnat?.ip, b.probability])).toEqual([
      ['10.180.0.4', 0.5],
      ['10.180.0.5', 0.5],
    ]);
    const sticky = trace(rules, fromPod('172.30.0.44', 80), { ...OPTS, recentHits: ['KUBE-SEP-C6EBXVWJJZMIWKLZ'] });
    expect(sticky.branches.map((b) => [b.dnat?.ip, b.probability])).toEqual([['10.180.0.5', 1]]);
    expect(sticky.branches[0]!.steps[2]!.rule).toContain('--rcheck');
  });

  it('leaves other traffic alone: wrong protocol, unknown address', () => {
    expect(summary(trace(rules, { ...fromPod('172.30.0.41', 80), protocol: 'UDP' }, OPTS))).toEqual({
      endpoints: [],
      verdict: 'ACCEPT',
      masquerade: false,
    });
    const r = trace(rules, fromPod('8.8.8.8', 53), OPTS);
    expect(r.branches).toHaveLength(1);
    expect(r.branches[0]!.end).toBe('policy ACCEPT of nat POSTROUTING');
  });
});

describe('trace: netfilter semantics', () => {
  const rs = (nat: string, filter = ''): Ruleset => parseSave(`*nat\n${nat}COMMIT\n*filter\n${filter}COMMIT\n`, 'IPv4');
  const pkt: TracePacket = { src: '10.0.0.5', dst: '172.30.0.1', dport: 80, protocol: 'TCP', origin: 'external', inInterface: 'veth12' };

  it('lets marked NodePort traffic through a DROP-policy FORWARD chain via KUBE-FORWARD, and drops the rest', () => {
    const dropForward: Ruleset = {
      ...written,
      tables: written.tables.map((t) => ({
        ...t,
        chains: t.chains.map((c) => (t.name === 'filter' && c.name === 'FORWARD' ? { ...c, policy: 'DROP' } : c)),
      })),
    };
    expect(trace(dropForward, fromOutside(NODE, 3001), OPTS).verdict).toBe('ACCEPT');
    const pod = trace(dropForward, fromPod('172.30.0.41', 80), OPTS);
    expect(pod.verdict).toBe('DROP');
    expect(pod.branches[0]!.end).toBe('policy DROP of filter FORWARD');
  });

  it('returns from user chains with RETURN or by falling off, and gotos skip the caller', () => {
    const r = trace(
      rs(
        ':A - [0:0]\n:B - [0:0]\n:C - [0:0]\n-A PREROUTING -j A\n-A PREROUTING -j DNAT --to-destination 10.1.1.1:8080\n-A A -j RETURN\n-A A -j DNAT --to-destination 10.9.9.8:1\n-A C -j DNAT --to-destination 10.9.9.9:1\n',
      ),
      pkt,
      OPTS,
    );
    expect(r.endpoints).toEqual(['10.1.1.1:8080']);
    const g = trace(
      rs(
        ':A - [0:0]\n:B - [0:0]\n-A PREROUTING -j A\n-A PREROUTING -j DNAT --to-destination 10.1.1.1:8080\n-A A -g B\n-A A -j DNAT --to-destination 10.2.2.2:80\n',
      ),
      pkt,
      OPTS,
    );
    // B falls off: back to PREROUTING's next rule, A's DNAT is skipped.
    expect(g.endpoints).toEqual(['10.1.1.1:8080']);
  });

  it('matches interfaces with the + wildcard, and local packets have no input interface', () => {
    const rules = rs(
      ':A - [0:0]\n-A PREROUTING -i veth+ -j DNAT --to-destination 10.1.1.1:80\n-A OUTPUT ! -i veth+ -j DNAT --to-destination 10.2.2.2:80\n',
    );
    expect(trace(rules, pkt, OPTS).endpoints).toEqual(['10.1.1.1:80']);
    expect(trace(rules, { ...pkt, inInterface: 'eth0' }, OPTS).endpoints).toEqual([]);
    expect(trace(rules, { ...pkt, src: NODE, origin: 'local' }, OPTS).endpoints).toEqual(['10.2.2.2:80']);
  });

  it('updates the mark with MARK and tests it with -m mark', () => {
    const rules = rs(
      '-A PREROUTING -j MARK --set-xmark 0x4000/0x4000\n-A PREROUTING -j MARK --or-mark 0x1\n-A PREROUTING -j MARK --xor-mark 0x4000\n-A PREROUTING -m mark --mark 0x1/0x4001 -j DNAT --to-destination 10.1.1.1:80\n',
    );
    expect(trace(rules, pkt, OPTS).endpoints).toEqual(['10.1.1.1:80']);
  });

  it('sees conntrack state NEW, and DNAT only after a DNAT', () => {
    const rules = rs(
      '-A PREROUTING -j DNAT --to-destination 10.1.1.1:80\n',
      '-A FORWARD -m conntrack ! --ctstate DNAT -j DROP\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j REJECT\n',
    );
    expect(trace(rules, pkt, OPTS).verdict).toBe('ACCEPT');
    expect(trace(rs('', '-A FORWARD -m conntrack ! --ctstate DNAT -j DROP\n'), pkt, OPTS).verdict).toBe('DROP');
  });

  it('DNATs to IPv6 endpoints and REDIRECTs to a local address', () => {
    const v6: TracePacket = { src: 'fd00:10::5', dst: 'fd00:30::1', dport: 80, protocol: 'TCP', origin: 'external', inInterface: 'cbr0' };
    const r = trace(
      parseSave('*nat\n-A PREROUTING -d fd00:30::1/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00:10::1]:8080\nCOMMIT\n', 'IPv6'),
      v6,
      { localAddresses: ['2001:db8::1'] },
    );
    expect(r.endpoints).toEqual(['[fd00:10::1]:8080']);
    const redirect = trace(rs('-A PREROUTING -p tcp -j REDIRECT --to-ports 15001\n'), pkt, OPTS);
    expect(redirect.branches[0]).toMatchObject({ dnat: { ip: NODE, port: 15001 }, redirected: true });
  });

  it('warns about what it cannot evaluate, and assumes it matches', () => {
    const r = trace(rs('-A PREROUTING -m set --match-set KUBE-X dst -j DNAT --to-destination 10.1.1.1:80\n'), pkt, OPTS);
    expect(r.endpoints).toEqual(['10.1.1.1:80']);
    expect(r.warnings).toEqual(['-m set is not modelled; assumed to match']);
  });

  it('reads a SET target rule (--add-set NAME src,dst): not modelled, it is passed over as a non-terminating target', () => {
    const r = trace(
      rs('-A PREROUTING -p tcp -j SET --add-set KUBE-SEEN src,dst --exist --timeout 60\n-A PREROUTING -j DNAT --to-destination 10.1.1.1:80\n'),
      pkt,
      OPTS,
    );
    expect(r.endpoints).toEqual(['10.1.1.1:80']);
    expect(r.warnings).toEqual([expect.stringMatching(/target SET is not modelled/)]);
  });

  it('stops a jump loop with a warning', () => {
    const r = trace(rs(':A - [0:0]\n:B - [0:0]\n-A PREROUTING -j A\n-A A -j B\n-A B -j A\n'), pkt, { ...OPTS, maxDepth: 10 });
    expect(r.verdict).toBe('DROP');
    expect(r.warnings[0]).toMatch(/exceeds 10 nested chains/);
  });

  it('treats a missing built-in chain as empty with policy ACCEPT', () => {
    expect(trace({ family: 'IPv4', tables: [] }, pkt, OPTS)).toEqual({
      branches: [expect.objectContaining({ probability: 1, verdict: 'ACCEPT', steps: [] })],
      endpoints: [],
      verdict: 'ACCEPT',
      masquerade: false,
      warnings: [],
    });
  });

  describe('every table at each hook, in the kernel’s priority order (raw -300, mangle -150, nat -100, filter 0, nat 100)', () => {
    /** kube-proxy's rules plus another tool's, as iptables-save prints them together. */
    const withOthers = (others: string): Ruleset => parseSave(`${others}${KUBE_PROXY_RULES}`, 'IPv4');

    it('a pre-DNAT drop in mangle PREROUTING (Calico’s preDNAT policy) drops the NodePort before nat PREROUTING sees it', () => {
      const r = trace(
        withOthers(
          '*mangle\n:cali-PREROUTING - [0:0]\n-A PREROUTING -j cali-PREROUTING\n-A cali-PREROUTING -s 203.0.113.7/32 -p tcp -m tcp --dport 3001 -j DROP\nCOMMIT\n',
        ),
        fromOutside(NODE, 3001),
        OPTS,
      );
      expect(summary(r)).toEqual({ endpoints: [], verdict: 'DROP', masquerade: false });
      expect(r.branches[0]!.end).toBe('mangle cali-PREROUTING rule 1: DROP');
    });

    it('a mark cleared in mangle FORWARD, between nat PREROUTING and filter FORWARD, loses KUBE-FORWARD’s accept and the masquerade', () => {
      const others = '*mangle\n-A FORWARD -j MARK --set-xmark 0x0/0xffff\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\nCOMMIT\n';
      const r = trace(withOthers(others), fromOutside(NODE, 3001), OPTS);
      expect(summary(r)).toEqual({ endpoints: ['10.180.0.2:80'], verdict: 'DROP', masquerade: false });
      expect(r.branches[0]!.end).toBe('policy DROP of filter FORWARD');
      // Set in mangle POSTROUTING (before nat POSTROUTING, 100), the mark is what KUBE-POSTROUTING tests.
      const set = trace(withOthers('*mangle\n-A POSTROUTING -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n'), fromPod('172.30.0.41', 80), OPTS);
      expect(set.masquerade).toBe(true);
    });

    it('raw CT --notrack: no nat chain sees the packet (no DNAT, no masquerade), conntrack state is UNTRACKED', () => {
      const r = trace(
        withOthers(
          '*raw\n-A PREROUTING -s 10.0.0.0/8 -j CT --notrack\nCOMMIT\n*filter\n-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\nCOMMIT\n',
        ),
        fromPod('172.30.0.41', 80),
        OPTS,
      );
      expect(summary(r)).toEqual({ endpoints: [], verdict: 'ACCEPT', masquerade: false });
      expect(r.branches[0]!.steps.map((s) => `${s.table}/${s.chain}`)).toEqual(['raw/PREROUTING', 'filter/FORWARD']);
      // The old NOTRACK target too, and from the node in raw OUTPUT: no nat OUTPUT, no REJECT from the NEW-only jump.
      const local = trace(withOthers('*raw\n-A OUTPUT -j NOTRACK\nCOMMIT\n'), fromNode('172.30.0.43', 80), OPTS);
      expect(summary(local)).toEqual({ endpoints: [], verdict: 'ACCEPT', masquerade: false });
    });

    it('a packet from the node to a local endpoint comes back in through lo with its connection: -i lo matches, CT --notrack there is a no-op', () => {
      const rules = parseSave(
        '*nat\n-A OUTPUT -d 172.30.0.9/32 -p tcp -j DNAT --to-destination 192.168.0.2:8080\nCOMMIT\n' +
          '*raw\n-A PREROUTING -i lo -j CT --notrack\nCOMMIT\n' +
          '*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n',
        'IPv4',
      );
      const r = trace(rules, fromNode('172.30.0.9', 80), OPTS);
      expect(summary(r)).toEqual({ endpoints: ['192.168.0.2:8080'], verdict: 'ACCEPT', masquerade: false });
      expect(r.branches[0]!.steps.map((s) => `${s.table}/${s.chain}#${s.index}`)).toEqual(['nat/OUTPUT#1', 'raw/PREROUTING#1', 'filter/INPUT#1']);
      // From outside, the same endpoint arrives on eth0: the policy drops it.
      const outside = trace(
        parseSave(
          '*nat\n-A PREROUTING -d 172.30.0.9/32 -p tcp -j DNAT --to-destination 192.168.0.2:8080\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n',
          'IPv4',
        ),
        fromOutside('172.30.0.9', 80),
        OPTS,
      );
      expect(outside.verdict).toBe('DROP');
    });
  });

  describe('-o with the node’s routes', () => {
    // dockerd 28's filter FORWARD, ahead of kube-proxy's jumps (dockerd restarted after kube-proxy).
    const DOCKER = `*filter
:FORWARD DROP [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER-BRIDGE -o docker0 -j DOCKER
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i docker0 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
`;
    const docker = parseSave(DOCKER + KUBE_PROXY_RULES, 'IPv4');
    const routes = [
      { dst: '0.0.0.0/0', dev: 'eth0' },
      { dst: '172.17.0.0/16', dev: 'docker0' },
      { dst: '10.180.0.0/24', dev: 'cbr0' },
      { dst: '10.180.0.2', dev: 'veth2' },
    ];

    it('tests the device of the longest route to the translated destination: a NodePort forwarded to a pod passes Docker’s docker0 rules and KUBE-FORWARD accepts it under FORWARD DROP', () => {
      const r = trace(docker, fromOutside(NODE, 3001), { ...OPTS, routes });
      expect(summary(r)).toEqual({ endpoints: ['10.180.0.2:80'], verdict: 'ACCEPT', masquerade: true });
      expect(r.branches[0]!.steps.map((s) => `${s.table}/${s.chain}#${s.index}`)).toContain('filter/KUBE-FORWARD#2');
      expect(r.warnings).toEqual([]);
      // To a container on docker0 the same rules drop it.
      const toDocker = parseSave(DOCKER + '*nat\n-A PREROUTING -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n', 'IPv4');
      expect(trace(toDocker, fromOutside(NODE, 3001), { ...OPTS, routes }).branches[0]!.end).toBe('filter DOCKER rule 1: DROP');
    });

    it('without routes, assumes -o matches and says so; with routes but none to the address, too', () => {
      const r = trace(docker, fromOutside(NODE, 3001), OPTS);
      expect(r.verdict).toBe('DROP');
      expect(r.warnings).toContain('-o docker0 is not modelled (no routing); assumed to match');
      const partial = trace(docker, fromOutside(NODE, 3001), { ...OPTS, routes: [{ dst: '172.17.0.0/16', dev: 'docker0' }] });
      expect(partial.warnings).toContain('-o docker0 tested but no route to 10.180.0.2 names a device; assumed to match');
    });
  });
});
