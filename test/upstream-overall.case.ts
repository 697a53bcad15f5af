/**
 * The Services and EndpointSlices of upstream's TestOverallIPTablesRules and
 * TestOverallNFTablesRules (pkg/proxy/{iptables,nftables}/proxier_test.go):
 * one Service of each shape (ClusterIP; LoadBalancer with eTP Local, an
 * external IP and a health check port; NodePort; an external IP; LoadBalancer
 * with source ranges and ClientIP affinity; no endpoints), as API objects.
 */
import { makeEndpointSlice, makeService } from './builders.ts';

/** Upstream's fixture node name (NewFakeProxier's testNodeName). */
export const UPSTREAM_TEST_NODE = 'test-node';

const http = [{ name: 'p80', port: 80, protocol: 'TCP' }];
const slice = (ns: string, svc: string, endpoints: { ip: string; nodeName?: string }[]) => makeEndpointSlice(ns, svc, { endpoints, ports: http });

export function upstreamOverallObjects(): { services: unknown[]; slices: unknown[] } {
  const services = [
    makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }] }),
    makeService('ns2', 'svc2', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      clusterIP: '172.30.0.42',
      ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
      ingress: [{ ip: '1.2.3.4' }],
      externalIPs: ['192.168.99.22'],
      healthCheckNodePort: 30000,
    }),
    makeService('ns3', 'svc3', { type: 'NodePort', clusterIP: '172.30.0.43', ports: [{ name: 'p80', port: 80, nodePort: 3003 }] }),
    makeService('ns4', 'svc4', {
      type: 'NodePort',
      clusterIP: '172.30.0.44',
      externalIPs: ['192.168.99.33'],
      ports: [{ name: 'p80', port: 80, targetPort: 80 }],
    }),
    makeService('ns5', 'svc5', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Cluster',
      clusterIP: '172.30.0.45',
      ports: [{ name: 'p80', port: 80, nodePort: 3002 }],
      ingress: [{ ip: '5.6.7.8' }],
      healthCheckNodePort: 30000,
      // Upstream: "Extra whitespace to ensure that invalid value will not result in a crash, for backward compatibility."
      loadBalancerSourceRanges: [' 203.0.113.0/25'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeout: 10800,
    }),
    makeService('ns6', 'svc6', { type: 'ClusterIP', clusterIP: '172.30.0.46', ports: [{ name: 'p80', port: 80, targetPort: 80 }] }),
  ];
  const slices = [
    slice('ns1', 'svc1', [{ ip: '10.180.0.1' }]),
    // No nodeName: remote, so eTP Local has no local endpoint.
    slice('ns2', 'svc2', [{ ip: '10.180.0.2' }]),
    slice('ns3', 'svc3', [{ ip: '10.180.0.3' }]),
    slice('ns4', 'svc4', [{ ip: '10.180.0.4' }, { ip: '10.180.0.5', nodeName: UPSTREAM_TEST_NODE }]),
    slice('ns5', 'svc5', [{ ip: '10.180.0.3' }]),
  ];
  return { services, slices };
}
