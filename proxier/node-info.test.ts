import { describe, expect, it } from 'vitest';
import { makeNode } from '../test/builders.ts';
import { nodeInfoFrom } from './node-info.ts';
import { formatProblem } from './types.ts';

describe('nodeInfoFrom', () => {
  it('knows nothing until the Node has been seen', () => {
    expect(nodeInfoFrom(null, 'node-1')).toEqual({
      node: {
        name: 'node-1',
        known: false,
        addresses: [],
        primaryIP: null,
        secondaryIP: null,
        labels: {},
        zone: null,
        podCIDRs: [],
        deleting: false,
        toBeDeletedByAutoscaler: false,
      },
      problems: [],
    });
  });

  it('reads addresses, zone, labels and pod CIDRs', () => {
    const { node, problems } = nodeInfoFrom(
      makeNode('node-1', { addresses: ['192.168.0.11', 'fd00::11'], zone: 'zone-a', podCIDR: '10.244.1.0/24' }),
      'node-1',
    );
    expect(problems).toEqual([]);
    expect(node).toMatchObject({
      name: 'node-1',
      known: true,
      addresses: ['192.168.0.11', 'fd00::11'],
      primaryIP: '192.168.0.11',
      zone: 'zone-a',
      podCIDRs: ['10.244.1.0/24'],
      deleting: false,
      toBeDeletedByAutoscaler: false,
    });
    expect(node.labels).toEqual({ 'kubernetes.io/hostname': 'node-1', 'topology.kubernetes.io/zone': 'zone-a' });
  });

  it('prefers the first InternalIP as primary, skips hostnames, normalises and de-duplicates', () => {
    const raw = makeNode('n', {
      status: {
        addresses: [
          { type: 'Hostname', address: 'n' },
          { type: 'ExternalIP', address: '203.0.113.010' },
          { type: 'InternalDNS', address: 'n.cluster.local' },
          { type: 'InternalIP', address: 'FD00:0::11' },
          { type: 'InternalIP', address: '192.168.0.11' },
          { type: 'ExternalIP', address: '203.0.113.10' },
        ],
      },
    });
    const { node } = nodeInfoFrom(raw, 'n');
    expect(node.addresses).toEqual(['203.0.113.10', 'fd00::11', '192.168.0.11']);
    expect(node.primaryIP).toBe('fd00::11');
    // The other family's InternalIP, though an ExternalIP of that family comes first (upstream GetNodeHostIPs).
    expect(node.secondaryIP).toBe('192.168.0.11');
  });

  it('takes a specific --bind-address as the node IP of its family, that family as the primary one (upstream detectNodeIPs)', () => {
    const raw = makeNode('n', { addresses: ['fd00::11', '192.168.0.11'] });
    const ips = (bindAddress: string) => {
      const { primaryIP, secondaryIP } = nodeInfoFrom(raw, 'n', { bindAddress }).node;
      return [primaryIP, secondaryIP];
    };
    expect(ips('0.0.0.0')).toEqual(['fd00::11', '192.168.0.11']);
    expect(ips('::')).toEqual(['fd00::11', '192.168.0.11']);
    expect(ips('192.168.0.12')).toEqual(['192.168.0.12', 'fd00::11']);
    expect(ips('fd00::12')).toEqual(['fd00::12', '192.168.0.11']);
    // Before the Node is known, too.
    expect(nodeInfoFrom(null, 'n', { bindAddress: '192.168.0.12' }).node).toMatchObject({
      known: false,
      primaryIP: '192.168.0.12',
      secondaryIP: null,
    });
  });

  it('falls back to the first address when there is no InternalIP', () => {
    expect(nodeInfoFrom(makeNode('n', { externalAddresses: ['203.0.113.10'] }), 'n').node.primaryIP).toBe('203.0.113.10');
  });

  it('prefers spec.podCIDRs over spec.podCIDR and canonicalises them', () => {
    const raw = makeNode('n', { spec: { podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.1.7/24', 'fd00:10:244:1::/64'] } });
    expect(nodeInfoFrom(raw, 'n').node.podCIDRs).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
  });

  it('notices a node going away: deletion timestamp or cluster-autoscaler taint', () => {
    expect(nodeInfoFrom(makeNode('n', { deleting: true }), 'n').node.deleting).toBe(true);
    const tainted = makeNode('n', { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1700000000', effect: 'NoSchedule' }] });
    expect(nodeInfoFrom(tainted, 'n').node.toBeDeletedByAutoscaler).toBe(true);
    expect(nodeInfoFrom(makeNode('n', { taints: [{ key: 'other', effect: 'NoSchedule' }] }), 'n').node.toBeDeletedByAutoscaler).toBe(false);
  });

  it('reports and skips unparseable addresses and CIDRs, keeping the rest', () => {
    const raw = makeNode('n', { addresses: ['192.168.0.300', '192.168.0.11'], podCIDRs: ['10.244.1.0/99', '10.244.2.0/24'] });
    const { node, problems } = nodeInfoFrom(raw, 'n');
    expect(node).toMatchObject({ addresses: ['192.168.0.11'], podCIDRs: ['10.244.2.0/24'] });
    expect(problems.map(formatProblem)).toEqual([
      'Node n: status.addresses[0].address: not an IP address: "192.168.0.300"; ignored',
      'Node n: spec.podCIDRs[0]: not a CIDR: "10.244.1.0/99"; ignored',
    ]);
  });

  it('treats a non-object as an unknown node and says so', () => {
    const r = nodeInfoFrom('node', 'n');
    expect(r.node.known).toBe(false);
    expect(r.problems.map(formatProblem)).toEqual(['Node n: not an object (got "node")']);
  });
});
