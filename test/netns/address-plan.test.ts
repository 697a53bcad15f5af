import { describe, expect, it } from 'vitest';
import { firstHost, planCluster, type ClusterSpec } from './address-plan.ts';

const two: ClusterSpec = {
  prefix: 't1',
  nodes: [
    {
      name: 'node-1',
      podCIDR: '10.244.1.0/24',
      pods: [
        { name: 'pod-a', ip: '10.244.1.2' },
        { name: 'pod-b', ip: '10.244.1.3' },
      ],
    },
    { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: '10.244.2.2' }] },
  ],
  client: true,
};

describe('planCluster', () => {
  it('names namespaces and links, and numbers nodes on the underlay', () => {
    const plan = planCluster(two);
    expect(plan.underlay).toEqual({
      ns: 't1-underlay',
      bridge: 'br0',
      cidr: '192.168.50.0/24',
      gateway: '192.168.50.1',
      cidr6: null,
      gateway6: null,
    });
    expect(plan.nodes.map((n) => [n.ns, n.ip, n.gateway, n.underlayPort])).toEqual([
      ['t1-node-1', '192.168.50.11', '10.244.1.1', 'n1'],
      ['t1-node-2', '192.168.50.12', '10.244.2.1', 'n2'],
    ]);
    expect(plan.pods.map((p) => [p.ns, p.node, p.ip, p.hostVeth])).toEqual([
      ['t1-pod-a', 'node-1', '10.244.1.2', 'veth1'],
      ['t1-pod-b', 'node-1', '10.244.1.3', 'veth2'],
      ['t1-pod-c', 'node-2', '10.244.2.2', 'veth1'],
    ]);
    expect(plan.client).toEqual({
      ns: 't1-client',
      ip: '192.168.50.200',
      ip6: null,
      via: 'node-1',
      routes: ['172.30.0.0/16', '203.0.113.0/24'],
      routes6: [],
      underlayPort: 'client',
    });
  });

  it('derives a dual-stack plan', () => {
    const plan = planCluster({ ...two, ipv6: true, client: { via: 'node-2' } });
    expect(plan.nodes[1]).toMatchObject({ ip6: 'fd00:192:168:50::12', podCIDR6: 'fd00:10:244:2::/64', gateway6: 'fd00:10:244:2::1' });
    expect(plan.pods.map((p) => p.ip6)).toEqual(['fd00:10:244:1::2', 'fd00:10:244:1::3', 'fd00:10:244:2::2']);
    expect(plan.client).toMatchObject({ via: 'node-2', ip6: 'fd00:192:168:50::200', routes6: ['fd00:172:30::/108', '2001:db8:203::/64'] });
  });

  it('has no client unless asked', () => {
    expect(planCluster({ ...two, client: false }).client).toBeNull();
    expect(planCluster({ prefix: 'x1', nodes: two.nodes }).client).toBeNull();
  });

  it.each<[string, ClusterSpec, RegExp]>([
    ['a prefix with a dash', { ...two, prefix: 'a-b' }, /prefix "a-b" must be/],
    ['no nodes', { ...two, nodes: [] }, /need 1\.\.80 nodes/],
    [
      'a pod outside its CIDR',
      { ...two, nodes: [{ name: 'n', podCIDR: '10.1.0.0/24', pods: [{ name: 'p', ip: '10.2.0.2' }] }] },
      /pod p: ip "10.2.0.2" must be a host address in 10.1.0.0\/24/,
    ],
    [
      'a pod on the gateway',
      { ...two, nodes: [{ name: 'n', podCIDR: '10.1.0.0/24', pods: [{ name: 'p', ip: '10.1.0.1' }] }] },
      /other than the gateway 10.1.0.1/,
    ],
    ['a duplicate name', { ...two, nodes: [{ name: 'n', podCIDR: '10.1.0.0/24', pods: [{ name: 'n', ip: '10.1.0.2' }] }] }, /name "n" is used twice/],
    ['a reserved name', { ...two, nodes: [{ name: 'client', podCIDR: '10.1.0.0/24', pods: [] }] }, /name "client" is used twice \(or reserved\)/],
    [
      'overlapping pod CIDRs',
      {
        ...two,
        nodes: [
          { name: 'a', podCIDR: '10.1.0.0/16', pods: [] },
          { name: 'b', podCIDR: '10.1.2.0/24', pods: [] },
        ],
      },
      /pod CIDRs of a and b overlap/,
    ],
    ['an IPv6 podCIDR', { ...two, nodes: [{ name: 'a', podCIDR: 'fd00::/64', pods: [] }] }, /must be an IPv4 CIDR/],
    ['an unknown client.via', { ...two, client: { via: 'node-9' } }, /client.via "node-9" is not a node/],
  ])('rejects %s', (_what, spec, message) => {
    expect(() => planCluster(spec)).toThrow(message);
  });
});

describe('firstHost', () => {
  it('is the network address plus one, in either family', () => {
    expect(firstHost('10.244.1.0/24')).toBe('10.244.1.1');
    expect(firstHost('10.244.1.7/24')).toBe('10.244.1.1');
    expect(firstHost('10.0.255.255/32')).toBe('10.1.0.0');
    expect(firstHost('fd00:10:244:1::/64')).toBe('fd00:10:244:1::1');
  });
});
