/**
 * A fast-check generator of random, partly malformed clusters for the
 * property tests (test/fuzz-clusters*.test.ts): Services of every shape
 * (ClusterIP, NodePort, LoadBalancer with source ranges, external IPs, both
 * traffic policies, affinity, dual-stack, odd but escapable names), their
 * EndpointSlices (pods of the test cluster and unreachable addresses, every
 * condition) and the Node, with faults injected into about half of the
 * Services and some slices. Each fault says what must happen to its object:
 *
 * - skipped: nothing of it is programmed and a log line names it;
 * - partial: a port or entry is dropped and named in a log line, the rest is programmed;
 * - tolerated: upstream programs it, so must we (unknown enum values, nulls, huge or odd text);
 * - silent: upstream ignores it without a word (headless, ExternalName, another proxy's).
 *
 * Cluster IPs are unique per Service (from the Service's index), so a packet
 * to one Service's cluster IP can only be that Service's.
 */
import fc from 'fast-check';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';

type Json = Record<string, unknown>;
type Family = 'IPv4' | 'IPv6';
export type Outcome = 'skipped' | 'partial' | 'tolerated' | 'silent';

/** Pods of the e2e cluster (node-1: pod-a, pod-b; node-2: pod-c) and the port their servers listen on. */
export const FUZZ_PODS = {
  'pod-a': { ip: '10.244.1.2', ip6: 'fd00:10:244:1::2', node: 'node-1' },
  'pod-b': { ip: '10.244.1.3', ip6: 'fd00:10:244:1::3', node: 'node-1' },
  'pod-c': { ip: '10.244.2.2', ip6: 'fd00:10:244:2::2', node: 'node-2' },
} as const;
export const FUZZ_POD_PORT = 8080;
export const FUZZ_NODE = { name: 'node-1', ip: '192.168.50.11', ip6: 'fd00:192:168:50::11' } as const;

export interface GenPort {
  readonly name: string;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  readonly port: number;
}

/** What the oracle knows about one generated Service. */
export interface GenService {
  /** How logs name it: "Service <namespace>/<name>". */
  readonly object: string;
  readonly fault: string | null;
  readonly outcome: Outcome | 'valid';
  /** Ports that must be programmed (empty unless valid, tolerated or partial). */
  readonly ports: readonly GenPort[];
  readonly clusterIPs: Readonly<Partial<Record<Family, string>>>;
  /** Every endpoint address any of its slices names, and every endpoint port (an over-approximation). */
  readonly endpointIPs: ReadonlySet<string>;
  readonly endpointPorts: ReadonlySet<number>;
  /** Its endpoints are all pods listening on FUZZ_POD_PORT (real packets can check it). */
  readonly podsOnly: boolean;
}

export interface GenCluster {
  readonly objects: readonly unknown[];
  readonly services: readonly GenService[];
  /** Objects ("EndpointSlice ns/name", "Node node-1") that a log line must name. */
  readonly loggedObjects: readonly string[];
  /** Extra flags for render (on top of --hostname-override node-1 --cluster-cidr ...). */
  readonly flags: readonly string[];
  readonly faults: readonly string[];
}

interface ServiceFault {
  readonly outcome: Outcome;
  /** Changes the Service object (and may add ports); returns the object to emit. */
  readonly apply: (svc: Json, i: number) => unknown;
  /** The object as skip log lines name it, when the fault changes that (item: its position in the objects file). */
  readonly object?: (ns: string, name: string, item: number) => string;
}

const spec = (svc: Json): Json => svc['spec'] as Json;
const meta = (svc: Json): Json => svc['metadata'] as Json;
const addPort = (svc: Json, p: Json): void => void (spec(svc)['ports'] as unknown[]).push(p);
const setAffinity = (svc: Json, t: unknown): void => {
  spec(svc)['sessionAffinity'] = 'ClientIP';
  spec(svc)['sessionAffinityConfig'] = { clientIP: { timeoutSeconds: t } };
};

export const SERVICE_FAULTS: Readonly<Record<string, ServiceFault>> = {
  // skipped: upstream could not decode or program it
  'name-newline': {
    outcome: 'skipped',
    apply: (s) => ((meta(s)['name'] = `${String(meta(s)['name'])}\nx`), s),
    object: (ns, n) => `Service ${ns}/${n}\nx`,
  },
  'namespace-nul': { outcome: 'skipped', apply: (s) => ((meta(s)['namespace'] = `n\u0000s`), s), object: (_ns, n) => `Service n\u0000s/${n}` },
  // The objects file's reader names a nameless object by its place in the file.
  'no-name': { outcome: 'skipped', apply: (s) => (delete meta(s)['name'], s), object: (_ns, _n, item) => `(document 1) item ${item}` },
  'spec-not-object': { outcome: 'skipped', apply: (s) => ((s['spec'] = 'junk'), s) },
  'type-number': { outcome: 'skipped', apply: (s) => ((spec(s)['type'] = 7), s) },
  'etp-list': { outcome: 'skipped', apply: (s) => ((spec(s)['externalTrafficPolicy'] = ['Local']), s) },
  'timeout-zero': { outcome: 'skipped', apply: (s) => (setAffinity(s, 0), s) },
  'timeout-huge': { outcome: 'skipped', apply: (s) => (setAffinity(s, 1e12), s) },
  'timeout-string': { outcome: 'skipped', apply: (s) => (setAffinity(s, '60'), s) },
  'clusterip-bad': { outcome: 'skipped', apply: (s) => ((spec(s)['clusterIP'] = '172.30.999.1'), (spec(s)['clusterIPs'] = ['172.30.999.1']), s) },
  'clusterip-injection': {
    outcome: 'skipped',
    apply: (s) => ((spec(s)['clusterIP'] = '1.2.3.4 -j ACCEPT'), (spec(s)['clusterIPs'] = ['1.2.3.4 -j ACCEPT']), s),
  },
  'clusterips-only': { outcome: 'skipped', apply: (s) => (delete spec(s)['clusterIP'], s) },
  'ports-not-list': { outcome: 'skipped', apply: (s) => ((spec(s)['ports'] = { port: 80 }), s) },
  'port-name-newline-only': { outcome: 'skipped', apply: (s) => ((spec(s)['ports'] = [{ name: 'p\n1', port: 80, protocol: 'TCP' }]), s) },
  // partial: one port or entry dropped (and named), the rest programmed
  'port-out-of-range': { outcome: 'partial', apply: (s) => (addPort(s, { name: 'bad', port: 70000, protocol: 'TCP' }), s) },
  'port-string': { outcome: 'partial', apply: (s) => (addPort(s, { name: 'str', port: '81', protocol: 'TCP' }), s) },
  'port-protocol': { outcome: 'partial', apply: (s) => (addPort(s, { name: 'icmp', port: 82, protocol: 'ICMP' }), s) },
  'port-nodeport': { outcome: 'partial', apply: (s) => (addPort(s, { name: 'np', port: 83, protocol: 'TCP', nodePort: -1 }), s) },
  'port-name-quote-newline': { outcome: 'partial', apply: (s) => (addPort(s, { name: 'a"\nb', port: 84, protocol: 'TCP' }), s) },
  'externalip-bad': { outcome: 'partial', apply: (s) => ((spec(s)['externalIPs'] = ['bogus', 5, `${'9'.repeat(3000)}`, '192.168.99.250']), s) },
  'ingress-bad': {
    outcome: 'partial',
    apply: (s, i) => ((s['status'] = { loadBalancer: { ingress: [{ ip: 'nope' }, { ip: `1.2.4.${i % 250}` }] } }), s),
  },
  'sourcerange-bad': { outcome: 'partial', apply: (s) => ((spec(s)['loadBalancerSourceRanges'] = ['1.2.3.4', ' 10.0.0.0/8 ', 'garbage']), s) },
  // tolerated: upstream programs it
  // As kubectl apply does, the objects file's reader puts an object without namespace in "default".
  'no-namespace': { outcome: 'tolerated', apply: (s) => (delete meta(s)['namespace'], s), object: (_ns, n) => `Service default/${n}` },
  'type-unknown': { outcome: 'tolerated', apply: (s) => ((spec(s)['type'] = 'Nodeport'), s) },
  'etp-unknown': { outcome: 'tolerated', apply: (s) => ((spec(s)['externalTrafficPolicy'] = 'local'), s) },
  'itp-unknown': { outcome: 'tolerated', apply: (s) => ((spec(s)['internalTrafficPolicy'] = 'Node'), s) },
  'affinity-unknown': { outcome: 'tolerated', apply: (s) => ((spec(s)['sessionAffinity'] = 'Cookie'), s) },
  'timeout-long': { outcome: 'tolerated', apply: (s) => (setAffinity(s, 100000), s) },
  'nodeport-on-clusterip': {
    outcome: 'tolerated',
    apply: (s, i) => ((spec(s)['type'] = 'ClusterIP'), ((spec(s)['ports'] as Json[])[0]!['nodePort'] = 31000 + i), s),
  },
  nulls: {
    outcome: 'tolerated',
    apply: (s) => {
      Object.assign(spec(s), {
        externalIPs: null,
        loadBalancerSourceRanges: null,
        sessionAffinityConfig: null,
        healthCheckNodePort: null,
        trafficDistribution: null,
      });
      meta(s)['labels'] = null;
      s['status'] = null;
      return s;
    },
  },
  // silent: upstream ignores it
  headless: { outcome: 'silent', apply: (s) => ((spec(s)['clusterIP'] = 'None'), (spec(s)['clusterIPs'] = ['None']), s) },
  'external-name': { outcome: 'silent', apply: (s) => ((spec(s)['type'] = 'ExternalName'), (spec(s)['externalName'] = 'example.com'), s) },
  'other-proxy': { outcome: 'silent', apply: (s) => ((meta(s)['labels'] = { 'service.kubernetes.io/service-proxy-name': 'other' }), s) },
  'no-ports': { outcome: 'silent', apply: (s) => ((spec(s)['ports'] = null), s) },
};

/** Faults of an extra slice of a Service: logged (the slice is named), or silent / tolerated. */
const SLICE_FAULTS: Readonly<Record<string, { logged: boolean; apply: (slice: Json) => Json }>> = {
  'address-bad': { logged: true, apply: (s) => (((s['endpoints'] as Json[])[0]!['addresses'] = ['nope']), s) },
  'address-empty': { logged: true, apply: (s) => (((s['endpoints'] as Json[])[0]!['addresses'] = []), s) },
  'address-family': { logged: true, apply: (s) => (((s['endpoints'] as Json[])[0]!['addresses'] = ['fd00::99']), s) },
  'port-null-name': { logged: true, apply: (s) => (((s['ports'] as Json[])[0]!['name'] = null), s) },
  'port-no-name': { logged: true, apply: (s) => (delete (s['ports'] as Json[])[0]!['name'], s) },
  'port-zero': { logged: true, apply: (s) => (((s['ports'] as Json[])[0]!['port'] = 0), s) },
  'port-protocol': { logged: true, apply: (s) => (((s['ports'] as Json[])[0]!['protocol'] = 'ICMP'), s) },
  'no-label': { logged: true, apply: (s) => (((s['metadata'] as Json)['labels'] = {}), s) },
  'address-type': { logged: true, apply: (s) => ((s['addressType'] = 'Bogus'), s) },
  'endpoints-not-list': { logged: true, apply: (s) => ((s['endpoints'] = 'x'), s) },
  'huge-strings': {
    logged: false,
    apply: (s) => (((s['endpoints'] as Json[])[0]!['nodeName'] = 'n'.repeat(5000)), ((s['endpoints'] as Json[])[0]!['zone'] = 'z'.repeat(5000)), s),
  },
  fqdn: { logged: false, apply: (s) => ((s['addressType'] = 'FQDN'), ((s['endpoints'] as Json[])[0]!['addresses'] = ['example.com']), s) },
};

const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Names the API would refuse but a rule can carry (escaped, cut to 255 bytes): programmed. */
const oddText = fc.oneof(
  fc.constantFrom('q"uote', 'with space', 'tab\there', "back\\slash'", 'pi|pe', '-dash', '日本語', 'emoji\u{1F600}', '#hash', '!bang', '*star'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map((s) => s.replace(/[\u0000-\u001f\u007f]/g, '_')),
  fc.string({ unit: lone, minLength: 1, maxLength: 2 }).map((s) => `l${s}`),
  fc.integer({ min: 200, max: 3000 }).map((n) => 'n'.repeat(n)),
);

const endpointArb = fc.record({
  pod: fc.constantFrom<keyof typeof FUZZ_PODS | null>('pod-a', 'pod-b', 'pod-c', null),
  other: fc.integer({ min: 1, max: 250 }),
  otherPort: fc.integer({ min: 1, max: 65535 }),
  ready: fc.constantFrom(true, true, true, false, undefined),
  serving: fc.constantFrom(true, false, undefined),
  terminating: fc.constantFrom(false, false, true, undefined),
  nodeName: fc.constantFrom<string | undefined>('node-1', 'node-2', undefined),
  zone: fc.constantFrom<string | undefined>('zone-a', 'zone-b', undefined, undefined),
  zoneHints: fc.option(fc.constantFrom(['zone-a'], ['zone-b'], ['zone-a', 'zone-b'], []), { freq: 3, nil: undefined }),
  nodeHints: fc.option(fc.constantFrom(['node-1'], ['node-2']), { freq: 6, nil: undefined }),
});

const serviceArb = fc.record({
  shape: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIPs'),
  namespace: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('default', 'ns1', 'kube-system') }, { weight: 1, arbitrary: oddText }),
  oddName: fc.option(oddText, { freq: 4 }),
  dual: fc.boolean(),
  ports: fc.uniqueArray(
    fc.record({
      name: fc.constantFrom('', 'http', 'dns', 'p8443', 'x"y z'),
      protocol: fc.constantFrom('TCP', 'TCP', 'UDP', 'SCTP'),
      port: fc.integer({ min: 1, max: 65535 }),
    }),
    { minLength: 1, maxLength: 3, selector: (p) => p.name },
  ),
  affinity: fc.option(fc.integer({ min: 1, max: 86400 }), { freq: 4 }),
  // Topology: spec.trafficDistribution (an unknown value is ignored, as upstream) or the topology-mode annotation.
  topology: fc.option(fc.constantFrom('PreferClose', 'PreferSameZone', 'PreferSameNode', 'Elsewhere', 'annotation'), { freq: 3 }),
  etpLocal: fc.boolean(),
  itpLocal: fc.option(fc.constant(true), { freq: 5 }),
  sourceRanges: fc.boolean(),
  endpoints: fc.array(endpointArb, { maxLength: 4 }),
  fault: fc.option(fc.constantFrom(...Object.keys(SERVICE_FAULTS)), { freq: 2 }),
  sliceFault: fc.option(fc.constantFrom(...Object.keys(SLICE_FAULTS)), { freq: 3 }),
});

const clusterSpecArb = fc.record({
  services: fc.array(serviceArb, { minLength: 1, maxLength: 8 }),
  nodePortAddresses: fc.constantFrom<string[]>([], [], ['192.168.50.0/24'], ['fd00:192:168:50::/64'], ['primary']),
  masqueradeAll: fc.boolean(),
  nodeFault: fc.option(fc.constant('address-bad'), { freq: 8 }),
  zone: fc.constantFrom<string | null>('zone-a', 'zone-b', null),
});

export const clusterArbitrary: fc.Arbitrary<GenCluster> = clusterSpecArb.map(build);

/** What happens to one Service from the first cluster of a pair to the second. */
const CHANGES = ['same', 'same', 'endpoints', 'endpoints', 'endpoints', 'policy', 'ports', 'other', 'gone'] as const;

/**
 * Two clusters of one node, the second the first after some events: each Service kept, given other endpoints (or
 * other conditions, or a faulty slice), another traffic policy or affinity, other ports, replaced by another
 * Service of the same name, or deleted; and some Services added. Service ports keep their names across the two, so
 * a sync from one to the other rewrites the chains of changed services in place (where whole random clusters mostly
 * add and remove services).
 */
export const clusterPairArbitrary: fc.Arbitrary<[GenCluster, GenCluster]> = fc
  .record({
    a: clusterSpecArb,
    other: fc.array(serviceArb, { minLength: 9, maxLength: 9 }),
    changes: fc.array(fc.constantFrom(...CHANGES), { minLength: 8, maxLength: 8 }),
    added: fc.nat({ max: 2 }),
    // The Node may change too: its zone label (every service's endpoint selection with it), its pod CIDR (local
    // traffic detection), or a second address (NodePorts on the primary IP or on every address).
    node: fc.constantFrom('same', 'same', 'zone-a', 'zone-b', 'no-zone', 'podCIDR', 'address'),
  })
  .map(({ a, other, changes, added, node }) => {
    const services: (ServiceSpec | null)[] = a.services.map((s, i) => {
      const o = other[i]!;
      switch (changes[i]!) {
        case 'same':
          return s;
        case 'endpoints':
          return { ...s, endpoints: o.endpoints, sliceFault: o.sliceFault };
        case 'policy':
          return { ...s, etpLocal: o.etpLocal, itpLocal: o.itpLocal, affinity: o.affinity, sourceRanges: o.sourceRanges, topology: o.topology };
        case 'ports':
          return { ...s, ports: o.ports };
        case 'other':
          return { ...o, namespace: s.namespace, oddName: s.oddName };
        case 'gone':
          return null;
      }
    });
    for (let k = 0; k < added; k++) services.push(other[8 - k]!);
    const b = {
      ...a,
      services,
      ...(node === 'zone-a' || node === 'zone-b' ? { zone: node } : node === 'no-zone' ? { zone: null } : {}),
      ...(node === 'podCIDR' ? { podCIDR: '10.244.9.0/24' } : node === 'address' ? { extraAddress: '192.168.50.12' } : {}),
    };
    return [build(a), build(b)];
  });

type ServiceSpec = typeof serviceArb extends fc.Arbitrary<infer T> ? T : never;

/** A generated cluster; a null service keeps its index (its name and addresses) unused. */
function build(c: {
  services: readonly (ServiceSpec | null)[];
  nodePortAddresses: string[];
  masqueradeAll: boolean;
  nodeFault: string | null;
  zone: string | null;
  podCIDR?: string;
  extraAddress?: string;
}): GenCluster {
  const objects: unknown[] = [];
  const services: GenService[] = [];
  const loggedObjects: string[] = [];
  const faults: string[] = [];
  const node = makeNode(FUZZ_NODE.name, {
    addresses: [FUZZ_NODE.ip, FUZZ_NODE.ip6, ...(c.extraAddress ? [c.extraAddress] : [])],
    podCIDR: c.podCIDR ?? '10.244.1.0/24',
    ...(c.zone ? { zone: c.zone } : {}),
  });
  if (c.nodeFault) {
    ((node['status'] as Json)['addresses'] as Json[]).push({ type: 'InternalIP', address: 'not-an-ip' });
    loggedObjects.push(`Node ${FUZZ_NODE.name}`);
    faults.push(`node:${c.nodeFault}`);
  }
  objects.push(node);
  c.services.forEach((s, i) => {
    if (s === null) return;
    const built = buildService(s, i, objects.length + 1);
    objects.push(...built.objects);
    services.push(built.service);
    loggedObjects.push(...built.loggedSlices);
    if (s.fault) faults.push(`service ${i}:${s.fault}`);
    if (s.sliceFault) faults.push(`slice of ${i}:${s.sliceFault}`);
  });
  const flags = [
    ...(c.nodePortAddresses.length ? [`--nodeport-addresses=${c.nodePortAddresses.join(',')}`] : []),
    ...(c.masqueradeAll ? ['--masquerade-all'] : []),
  ];
  return { objects, services, loggedObjects, flags, faults };
}

function buildService(s: ServiceSpec, i: number, item: number): { objects: unknown[]; service: GenService; loggedSlices: string[] } {
  const name = s.oddName === null ? `svc-${i}` : `svc-${i}-${s.oddName}`;
  const ns = s.namespace;
  const v4 = `172.30.${(i >> 8) & 255}.${(i & 255) + 1}`;
  const v6 = `fd00:172:30::${(i + 1).toString(16)}`;
  const type = s.shape === 'ExternalIPs' ? 'ClusterIP' : s.shape;
  const ports = s.ports.map((p, j) => ({
    ...p,
    targetPort: FUZZ_POD_PORT,
    ...(type !== 'ClusterIP' ? { nodePort: 30000 + ((i * 3 + j) % 2700) } : {}),
  }));
  const svc = makeService(ns, name, {
    clusterIPs: s.dual ? [v4, v6] : [v4],
    type,
    ports,
    ...(s.shape === 'ExternalIPs' || s.shape === 'LoadBalancer' ? { externalIPs: [`192.168.99.${(i % 250) + 1}`] } : {}),
    ...(s.shape === 'LoadBalancer' ? { loadBalancerIP: `1.2.3.${(i % 250) + 1}`, healthCheckNodePort: 32000 + i } : {}),
    ...(s.shape === 'LoadBalancer' && s.sourceRanges ? { loadBalancerSourceRanges: ['192.168.50.0/24', '10.0.0.0/8'] } : {}),
    ...(s.shape !== 'ClusterIP' ? { externalTrafficPolicy: s.etpLocal ? 'Local' : 'Cluster' } : {}),
    ...(s.itpLocal ? { internalTrafficPolicy: 'Local' } : {}),
    ...(s.affinity !== null ? { sessionAffinity: 'ClientIP', sessionAffinityTimeout: s.affinity } : {}),
    ...(s.topology !== null && s.topology !== 'annotation' ? { trafficDistribution: s.topology } : {}),
  });
  if (s.topology === 'annotation') (svc['metadata'] as Json)['annotations'] = { 'service.kubernetes.io/topology-mode': 'Auto' };
  const fault = s.fault === null ? null : SERVICE_FAULTS[s.fault]!;
  const emitted = fault ? fault.apply(svc, i) : svc;
  // The objects file's reader takes a lone surrogate as U+FFFD, as Go's encoding/json does.
  const object = (fault?.object?.(ns, name, item) ?? `Service ${ns}/${name}`).toWellFormed();

  // Slices: one per family with this Service's endpoints, and maybe one faulty extra.
  const objects: unknown[] = [emitted];
  const endpointIPs = new Set<string>();
  const endpointPorts = new Set<number>();
  let podsOnly = s.endpoints.length > 0;
  const sliceFor = (family: Family, suffix: string): Json => {
    const endpoints = s.endpoints.map((e) => {
      const ip = e.pod
        ? family === 'IPv4'
          ? FUZZ_PODS[e.pod].ip
          : FUZZ_PODS[e.pod].ip6
        : family === 'IPv4'
          ? `10.99.${i % 250}.${e.other}`
          : `fd00:99::${e.other.toString(16)}`;
      endpointIPs.add(ip);
      const conditions: Json = {};
      if (e.ready !== undefined) conditions['ready'] = e.ready;
      if (e.serving !== undefined) conditions['serving'] = e.serving;
      if (e.terminating !== undefined) conditions['terminating'] = e.terminating;
      const hints = {
        ...(e.zoneHints ? { forZones: e.zoneHints.map((name) => ({ name })) } : {}),
        ...(e.nodeHints ? { forNodes: e.nodeHints.map((name) => ({ name })) } : {}),
      };
      return {
        ip,
        conditions,
        ...(e.pod ? { nodeName: FUZZ_PODS[e.pod].node } : e.nodeName ? { nodeName: e.nodeName } : {}),
        ...(e.zone ? { zone: e.zone } : {}),
        ...(e.zoneHints || e.nodeHints ? { hints } : {}),
      };
    });
    const slicePorts = s.ports.map((p, j) => {
      const e = s.endpoints[j % Math.max(1, s.endpoints.length)];
      const port = e && !e.pod ? e.otherPort : FUZZ_POD_PORT;
      endpointPorts.add(port);
      return { name: p.name, protocol: p.protocol, port };
    });
    return makeEndpointSlice(ns, name, `${name}-${suffix}`, { addressType: family, endpoints, ports: slicePorts });
  };
  if (s.endpoints.some((e) => !e.pod)) podsOnly = false;
  objects.push(sliceFor('IPv4', 'v4'));
  if (s.dual) objects.push(sliceFor('IPv6', 'v6'));
  const loggedSlices: string[] = [];
  if (s.sliceFault) {
    const sf = SLICE_FAULTS[s.sliceFault]!;
    const extra = sliceFor('IPv4', 'bad');
    if ((extra['endpoints'] as unknown[]).length === 0) {
      (extra['endpoints'] as unknown[]).push({ addresses: [FUZZ_PODS['pod-a'].ip], conditions: {} });
      endpointIPs.add(FUZZ_PODS['pod-a'].ip);
      podsOnly = false; // the pod is an endpoint only if the fault leaves the slice usable
    }
    objects.push(sf.apply(extra));
    if (sf.logged) loggedSlices.push(`EndpointSlice ${ns}/${name}-bad`.toWellFormed());
  }

  const outcome = fault?.outcome ?? 'valid';
  const programmed = outcome === 'valid' || outcome === 'tolerated' || outcome === 'partial';
  const clusterIPs: Partial<Record<Family, string>> = programmed ? { IPv4: v4, ...(s.dual ? { IPv6: v6 } : {}) } : {};
  const portsProgrammed: GenPort[] = programmed
    ? s.ports.map((p) => ({ name: p.name, protocol: p.protocol as GenPort['protocol'], port: p.port }))
    : [];
  return {
    objects,
    service: { object, fault: s.fault, outcome, ports: portsProgrammed, clusterIPs, endpointIPs, endpointPorts, podsOnly },
    loggedSlices,
  };
}
