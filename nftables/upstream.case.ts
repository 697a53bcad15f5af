/**
 * Upstream's nftables test fixture (pkg/proxy/nftables/proxier_test.go
 * NewFakeProxier) rebuilt for our renderer: node "test-node" at 192.168.0.2
 * (2001:db8::1), pods 10.0.0.0/8 (fd00:10::/64) for local-traffic detection,
 * ServiceCIDR 172.30.0.0/16 (fd00:10:96::/112), nodePortAddresses
 * 192.168.0.2/32 and 2001:db8::1/128, and the interface addresses of
 * upstream's fake network (the snapshot's hostAddresses). Plus upstream's
 * expected base dump and its dump ordering (assertNFTablesTransactionEqual),
 * for golden tests.
 */
import { buildSnapshots } from '../proxier/snapshot.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { makeNode, makeServiceCIDR } from '../test/builders.ts';
import { FakeNft } from './fake-nft.ts';
import { planFullSync } from './full-sync.ts';
import { renderNftables, type NftRenderOptions } from './render.ts';

export const TEST_NODE = 'test-node';
export const TEST_NODE_IP = '192.168.0.2';
export const TEST_NODE_IP_ALT = '192.168.1.2';
export const TEST_EXTERNAL_IP = '192.168.99.11';
export const TEST_NODE_IPV6 = '2001:db8::1';
export const TEST_NODE_IPV6_ALT = '2001:db8:1::2';
export const TEST_EXTERNAL_CLIENT = '203.0.113.2';
export const TEST_EXTERNAL_CLIENT_BLOCKED = '203.0.113.130';
export const TEST_NODE_IPS = [TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT];

export function upstreamOptions(family: IPFamily, over: Partial<NftRenderOptions> = {}): NftRenderOptions {
  return {
    masqueradeBit: 14,
    masqueradeAll: false,
    detectLocal: {
      mode: 'ClusterCIDR',
      clusterCIDRs: [family === 'IPv4' ? '10.0.0.0/8' : 'fd00:10::/64'],
      bridgeInterface: '',
      interfaceNamePrefix: '',
    },
    nodePortAddresses: [`${TEST_NODE_IP}/32`, `${TEST_NODE_IPV6}/128`],
    ...over,
  };
}

/** The fixture's ServiceCIDR object (upstream's fake proxier is told 172.30.0.0/16 and fd00:10:96::/112). */
export const UPSTREAM_SERVICE_CIDR = makeServiceCIDR('kubernetes', ['172.30.0.0/16', 'fd00:10:96::/112']);

export function upstreamSnapshot(
  family: IPFamily,
  services: readonly unknown[],
  slices: readonly unknown[],
  serviceCIDRs: readonly unknown[] = [UPSTREAM_SERVICE_CIDR],
): Snapshot {
  const node = makeNode(TEST_NODE, { addresses: [TEST_NODE_IP, TEST_NODE_IPV6] });
  const { snapshots, problems } = buildSnapshots(
    { services, slices, node, serviceCIDRs },
    { nodeName: TEST_NODE, families: [family], features: { preferSameTrafficDistribution: true } },
  );
  if (problems.length > 0) throw new Error(`fixture problems: ${JSON.stringify(problems)}`);
  // NewFakeProxier's networkInterfacer: lo with 127.0.0.1 and ::1, eth0 with the node's addresses.
  return { ...snapshots[0]!, hostAddresses: ['127.0.0.1', '::1', ...TEST_NODE_IPS] };
}

/** Renders and applies a full sync to a new fake; returns the fake. */
export async function applied(snapshot: Snapshot, options: NftRenderOptions): Promise<FakeNft> {
  const fake = new FakeNft();
  const plan = planFullSync(renderNftables(snapshot, options), { now: 0, live: null, recreateBaseChains: false });
  await fake.run(plan.text);
  return fake;
}

/** Upstream's baseRules, with the mark as the real binary writes it (%#08x). */
export const BASE_RULES = `
add table ip kube-proxy { comment "rules for kube-proxy" ; }

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }

add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check

add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x00004000
add rule ip kube-proxy masquerading mark and 0x00004000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x00004000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

add element ip kube-proxy nodeport-ips { 192.168.0.2 }
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
`;

const TYPE_ORDER = ['table', 'chain', 'set', 'map', 'rule', 'element'];

/**
 * Upstream's sortNFTablesTransaction: blank and "#" lines dropped; by object
 * type, then object name; rules keep their order within a chain; other lines
 * in text order.
 */
export function sortedDump(text: string): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const keyed = lines.map((line, i) => {
    const w = line.split(' ');
    return { line, type: TYPE_ORDER.indexOf(w[1] ?? ''), name: w[4] ?? '', i };
  });
  keyed.sort((a, b) => {
    if (a.type !== b.type) return a.type - b.type;
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    if (TYPE_ORDER[a.type] === 'rule') return a.i - b.i;
    return a.line < b.line ? -1 : a.line > b.line ? 1 : 0;
  });
  return keyed.map((k) => k.line);
}
