import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';
import { configFromFlags } from './config.ts';
import { desiredFromObjects, missingNodeEffect, nodeNameFor } from './desired.ts';
import { nftDesiredFromObjects } from './desired-nft.ts';
import type { FlagValue } from './flags.ts';
import type { ParsedObjects } from './sources/parse-objects.ts';

describe('nodeNameFor (upstream GetHostname)', () => {
  it('takes --hostname-override, else the OS hostname (NODE_NAME in the DaemonSet), blanks trimmed, lower-cased', () => {
    expect(nodeNameFor({ hostnameOverride: ' Node-1.Example ' }, () => 'ignored')).toBe('node-1.example');
    expect(nodeNameFor({ hostnameOverride: '' }, () => 'Worker-7\n')).toBe('worker-7');
    expect(nodeNameFor({ hostnameOverride: '   ' }, () => ' host ')).toBe('host');
  });
});

describe('missingNodeEffect', () => {
  it('says what each mode loses without its Node', () => {
    expect(missingNodeEffect('iptables')).toBe('no node addresses, NodePorts match LOCAL addresses only; no zone, so topology hints are ignored');
    expect(missingNodeEffect('nftables')).toMatch(/^no node addresses, no primary IP, so NodePorts match every local address but loopback;/);
    expect(missingNodeEffect('userspace')).toMatch(/node-originated portal traffic goes to an interface's address/);
  });
});

describe("the node IPs (upstream server.go detectNodeIPs over the Node's GetNodeHostIPs)", () => {
  /** The services, each with one endpoint (a service without endpoints has no firewall chain). */
  const objectsWith = (node: unknown, services: unknown[]): ParsedObjects => {
    const slices = services.map((svc) => {
      const name = (svc as { metadata: { name: string } }).metadata.name;
      const ip = name === 'lb6' ? 'fd00:10:244::5' : '10.244.1.5';
      return makeEndpointSlice('ns1', name, `${name}-1`, { endpoints: [{ ip, nodeName: 'node-1' }], ports: [{ name: 'p80', port: 80 }] });
    });
    return { services, slices, nodes: [node], problems: [] };
  };
  const config = (...flags: [string, FlagValue][]) => configFromFlags(new Map<string, FlagValue>([['hostname-override', 'node-1'], ...flags]));
  /** An IPv4 or IPv6 LoadBalancer whose source ranges hold only `range`. */
  const lb = (vip: string, range: string) =>
    makeService('ns1', vip.includes(':') ? 'lb6' : 'lb4', {
      type: 'LoadBalancer',
      clusterIP: vip.includes(':') ? 'fd00:172:30::20' : '172.30.0.20',
      ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
      loadBalancerIP: vip,
      loadBalancerSourceRanges: [range],
    });
  /** Whether the iptables firewall chain lets the node reach its load balancer (its source range holds the node IP). */
  const allowsNode = (d: ReturnType<typeof desiredFromObjects>, family: 'IPv4' | 'IPv6', vip: string): boolean => {
    const r = d.renders.find((x) => x.ruleset.family === family)!;
    const fw = r.ruleset.tables.flatMap((t) => t.chains).find((c) => c.name.startsWith('KUBE-FW-'))!;
    return fw.rules.some((x) => x.includes(` -s ${vip} -j KUBE-EXT-`));
  };
  const nodePortIPs = (d: ReturnType<typeof nftDesiredFromObjects>, family: 'ip' | 'ip6'): string[] =>
    [...(d.renders.find((r) => r.family === family)!.fixed.sets.find((s) => s.name === 'nodeport-ips')?.elements ?? [])].map((e) => e.key);

  it("takes the second family's first InternalIP, not an ExternalIP listed before it (upstream GetNodeHostIPs sorts InternalIPs first)", () => {
    const node = makeNode('node-1', {
      status: {
        addresses: [
          { type: 'InternalIP', address: '192.168.0.11' },
          { type: 'ExternalIP', address: '2001:db8::99' },
          { type: 'InternalIP', address: 'fd00::11' },
        ],
      },
    });
    const objects = objectsWith(node, [lb('fd00:ffff::1', 'fd00::11/128')]);
    expect(allowsNode(desiredFromObjects(objects, config(), { randomFully: false }), 'IPv6', 'fd00:ffff::1')).toBe(true);
    // nftables' default --nodeport-addresses "primary": the IPv6 NodePorts on the IPv6 node IP.
    expect(nodePortIPs(nftDesiredFromObjects(objects, config(['proxy-mode', 'nftables'])), 'ip6')).toEqual(['fd00::11']);
  });

  it('takes a specific --bind-address as the node IP of its family, which becomes the primary one (upstream detectNodeIPs)', () => {
    const node = makeNode('node-1', { addresses: ['fd00::11', '192.168.0.11'] });
    const objects = objectsWith(node, [lb('1.2.3.4', '192.168.0.12/32'), lb('fd00:ffff::1', 'fd00::11/128')]);
    const d = desiredFromObjects(objects, config(['bind-address', '192.168.0.12']), { randomFully: false });
    expect(d.snapshots.map((s) => s.family)).toEqual(['IPv4', 'IPv6']);
    expect(allowsNode(d, 'IPv4', '1.2.3.4')).toBe(true);
    expect(allowsNode(d, 'IPv6', 'fd00:ffff::1')).toBe(true);
    // Without it: the Node's IPv6-primary pair, and 192.168.0.12 is nobody's.
    const plain = desiredFromObjects(objects, config(), { randomFully: false });
    expect(plain.snapshots.map((s) => s.family)).toEqual(['IPv6', 'IPv4']);
    expect(allowsNode(plain, 'IPv4', '1.2.3.4')).toBe(false);
  });

  it("is loopback for a family the node has no IP of, which a source range may hold (upstream detectNodeIPs' default)", () => {
    const node = makeNode('node-1', { addresses: ['192.168.0.11'] });
    const objects = objectsWith(node, [lb('fd00:ffff::1', '::1/128')]);
    expect(allowsNode(desiredFromObjects(objects, config(), { randomFully: false, families: ['IPv4', 'IPv6'] }), 'IPv6', 'fd00:ffff::1')).toBe(true);
    // "primary" leaves loopback out (server.go): every IPv6 address but ::1, as without a node IP.
    expect(nodePortIPs(nftDesiredFromObjects(objects, config(['proxy-mode', 'nftables'])), 'ip6')).toEqual([]);
  });
});
