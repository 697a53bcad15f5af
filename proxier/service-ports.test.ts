import { describe, expect, it } from 'vitest';
import { makeService } from '../test/builders.ts';
import { servicePortsFor } from './service-ports.ts';
import { formatProblem } from './types.ts';

const v4 = (svc: unknown) => servicePortsFor(svc, 'IPv4');
const v6 = (svc: unknown) => servicePortsFor(svc, 'IPv6');
const texts = (r: { problems: Parameters<typeof formatProblem>[0][] }) => r.problems.map(formatProblem);

describe('servicePortsFor: what is proxied', () => {
  it('derives one ServicePort per port with upstream defaults', () => {
    const r = v4(
      makeService('ns1', 'svc1', {
        clusterIP: '172.30.0.41',
        ports: [
          { name: 'p80', port: 80 },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      }),
    );
    expect(r.problems).toEqual([]);
    expect(r.ports).toEqual([
      {
        key: 'ns1/svc1:p80',
        namespace: 'ns1',
        name: 'svc1',
        portName: 'p80',
        protocol: 'TCP',
        clusterIP: '172.30.0.41',
        port: 80,
        nodePort: 0,
        externalIPs: [],
        loadBalancerVIPs: [],
        loadBalancerSourceRanges: [],
        sessionAffinityTimeout: 0,
        externalPolicyLocal: false,
        internalPolicyLocal: false,
        healthCheckNodePort: 0,
        trafficDistribution: null,
      },
      expect.objectContaining({ key: 'ns1/svc1:dns', protocol: 'UDP', port: 53 }),
    ]);
  });

  it('keys an unnamed port by service name only and defaults the protocol to TCP', () => {
    const r = v4(makeService('ns1', 'svc1', { ports: [{ port: 8080, protocol: undefined }] }));
    expect(r.ports.map((p) => [p.key, p.portName, p.protocol])).toEqual([['ns1/svc1', '', 'TCP']]);
  });

  it.each([
    ['headless (clusterIP None)', makeService('ns', 's', { clusterIP: 'None' })],
    ['no cluster IP', makeService('ns', 's', { clusterIP: '', clusterIPs: [] })],
    ['ExternalName', makeService('ns', 's', { type: 'ExternalName', clusterIP: '', spec: { externalName: 'example.com' } })],
    ['ExternalName even with a cluster IP', makeService('ns', 's', { type: 'ExternalName', clusterIP: '10.0.0.1' })],
    ['owned by another proxy', makeService('ns', 's', { labels: { 'service.kubernetes.io/service-proxy-name': 'other' } })],
    ['labelled headless', makeService('ns', 's', { labels: { 'service.kubernetes.io/headless': '' } })],
  ])('skips a service silently: %s', (_name, svc) => {
    expect(v4(svc)).toEqual({ ports: [], problems: [] });
  });

  it('takes the cluster IP of the family by position in ipFamilies', () => {
    const svc = makeService('ns', 's', { clusterIPs: ['fd00:30::10', '172.30.0.10'] });
    expect(v4(svc).ports[0]?.clusterIP).toBe('172.30.0.10');
    expect(v6(svc).ports[0]?.clusterIP).toBe('fd00:30::10');
  });

  it('gives nothing to a family the service has no cluster IP of', () => {
    expect(v6(makeService('ns', 's', { clusterIP: '172.30.0.10' }))).toEqual({ ports: [], problems: [] });
    expect(v4(makeService('ns', 's', { clusterIP: 'fd00::10' }))).toEqual({ ports: [], problems: [] });
  });

  it('without ipFamilies (not API-defaulted) uses the IP whose family matches', () => {
    const svc = makeService('ns', 's', { clusterIP: '172.30.0.10', spec: { ipFamilies: undefined, clusterIPs: undefined } });
    expect(v4(svc).ports[0]?.clusterIP).toBe('172.30.0.10');
    expect(v6(svc).ports).toEqual([]);
  });

  it('normalises addresses with leading zeros, as upstream ParseIPSloppy does', () => {
    const r = v4(makeService('ns', 's', { clusterIP: '172.030.000.041', externalIPs: ['010.1.2.3'] }));
    expect(r.ports[0]).toMatchObject({ clusterIP: '172.30.0.41', externalIPs: ['10.1.2.3'] });
  });

  it('reports an unparseable or wrong-family cluster IP and skips the service', () => {
    expect(texts(v4(makeService('ns', 's', { clusterIP: '172.30.0.300' })))).toEqual([
      'Service ns/s: spec.clusterIPs[0]: not an IP address: "172.30.0.300"',
    ]);
    const wrong = makeService('ns', 's', { clusterIPs: ['172.30.0.1'], ipFamilies: ['IPv6'] });
    expect(v6(wrong).ports).toEqual([]);
    expect(texts(v6(wrong))).toEqual(['Service ns/s: spec.clusterIPs[0]: 172.30.0.1 is not an IPv6 address (spec.ipFamilies[0] is IPv6)']);
  });
});

describe('servicePortsFor: addresses per family', () => {
  it('keeps only this family of externalIPs; a bad one is reported and the rest kept', () => {
    const svc = makeService('ns', 's', { externalIPs: ['192.168.99.11', 'fd00::11', 'bogus', '192.168.99.11'] });
    const r = v4(svc);
    expect(r.ports[0]?.externalIPs).toEqual(['192.168.99.11']);
    expect(texts(r)).toEqual(['Service ns/s: spec.externalIPs[2]: not an IP address: "bogus"; entry ignored']);
    expect(v6(makeService('ns', 's', { clusterIP: 'fd00::1', externalIPs: ['192.168.99.11', 'FD00::0011'] })).ports[0]?.externalIPs).toEqual([
      'fd00::11',
    ]);
  });

  it('uses VIP-mode load-balancer ingress IPs only', () => {
    const svc = makeService('ns', 's', {
      type: 'LoadBalancer',
      ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
      ingress: [
        { ip: '1.2.3.4' },
        { ip: '1.2.3.5', ipMode: 'VIP' },
        { ip: '1.2.3.6', ipMode: 'Proxy' },
        { hostname: 'lb.example.com' },
        { ip: 'fd00::4' },
        { ip: 'x' },
      ],
    });
    const r = v4(svc);
    expect(r.ports[0]?.loadBalancerVIPs).toEqual(['1.2.3.4', '1.2.3.5']);
    expect(texts(r)).toEqual(['Service ns/s: status.loadBalancer.ingress[5].ip: not an IP address: "x"; entry ignored']);
  });

  it('trims, normalises and family-filters loadBalancerSourceRanges; invalid ones are dropped and reported', () => {
    const svc = makeService('ns', 's', {
      type: 'LoadBalancer',
      loadBalancerSourceRanges: [' 192.168.0.1/24 ', '10.0.0.0/8', 'fd00::/64', '1.2.3.4', '10.0.0.0/8'],
    });
    const r = v4(svc);
    expect(r.ports[0]?.loadBalancerSourceRanges).toEqual(['192.168.0.0/24', '10.0.0.0/8']);
    expect(texts(r)).toEqual(['Service ns/s: spec.loadBalancerSourceRanges[3]: not a CIDR: "1.2.3.4"; entry ignored']);
  });
});

describe('servicePortsFor: policies', () => {
  it('reads the ClientIP affinity timeout, defaulting to 10800', () => {
    expect(v4(makeService('ns', 's', { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 })).ports[0]?.sessionAffinityTimeout).toBe(600);
    const noConfig = makeService('ns', 's', { sessionAffinity: 'ClientIP', spec: { sessionAffinityConfig: undefined } });
    expect(v4(noConfig).ports[0]?.sessionAffinityTimeout).toBe(10800);
  });

  it('makes externalTrafficPolicy Local effective only for externally accessible services', () => {
    const local = { externalTrafficPolicy: 'Local' } as const;
    expect(v4(makeService('ns', 's', { ...local })).ports[0]?.externalPolicyLocal).toBe(false);
    expect(v4(makeService('ns', 's', { ...local, externalIPs: ['fd00::1'] })).ports[0]?.externalPolicyLocal).toBe(true);
    expect(v4(makeService('ns', 's', { ...local, type: 'NodePort' })).ports[0]?.externalPolicyLocal).toBe(true);
  });

  it('reads internalTrafficPolicy Local and trafficDistribution', () => {
    const r = v4(makeService('ns', 's', { internalTrafficPolicy: 'Local', trafficDistribution: 'PreferClose' }));
    expect(r.ports[0]).toMatchObject({ internalPolicyLocal: true, trafficDistribution: 'PreferClose' });
  });

  it('has a health check node port only for LoadBalancer with externalTrafficPolicy Local', () => {
    const lb = { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 } as const;
    expect(v4(makeService('ns', 's', lb)).ports[0]?.healthCheckNodePort).toBe(32000);
    expect(v4(makeService('ns', 's', { ...lb, externalTrafficPolicy: 'Cluster' })).ports[0]?.healthCheckNodePort).toBe(0);
    expect(v4(makeService('ns', 's', { ...lb, type: 'NodePort' })).ports[0]?.healthCheckNodePort).toBe(0);
  });

  it('reports a LoadBalancer with eTP Local but no health check node port, and still proxies it', () => {
    const r = v4(makeService('ns', 's', { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }));
    expect(r.ports).toHaveLength(1);
    expect(texts(r)[0]).toMatch(/^Service ns\/s: spec.healthCheckNodePort: a LoadBalancer with externalTrafficPolicy Local needs one/);
  });

  it('programs node ports whatever the type, as the port states them (upstream newBaseServiceInfo: nodePort: int(port.NodePort))', () => {
    const ports = [{ name: 'p80', port: 80, nodePort: 30080 }];
    expect(v4(makeService('ns', 's', { type: 'NodePort', ports })).ports[0]?.nodePort).toBe(30080);
    expect(v4(makeService('ns', 's', { type: 'LoadBalancer', ports })).ports[0]?.nodePort).toBe(30080);
    const clusterIP = v4(makeService('ns', 's', { type: 'ClusterIP', ports }));
    expect(clusterIP.problems).toEqual([]);
    expect(clusterIP.ports[0]?.nodePort).toBe(30080);
  });

  it('reads empty enum fields (as older API servers wrote them) as their defaults', () => {
    const r = v4(makeService('ns', 's', { spec: { type: '', externalTrafficPolicy: '', internalTrafficPolicy: '', sessionAffinity: '' } }));
    expect(r.problems).toEqual([]);
    expect(r.ports[0]).toMatchObject({ nodePort: 0, externalPolicyLocal: false, internalPolicyLocal: false, sessionAffinityTimeout: 0 });
  });

  it('treats an unknown externalTrafficPolicy as Cluster (upstream apiservice.ExternalPolicyLocal: only "Local" is local)', () => {
    const r = v4(makeService('ns', 's', { type: 'NodePort', externalTrafficPolicy: 'local', ports: [{ name: 'p80', port: 80, nodePort: 30080 }] }));
    expect(r.problems).toEqual([]);
    expect(r.ports[0]).toMatchObject({ externalPolicyLocal: false, nodePort: 30080 });
  });

  it('treats an unknown internalTrafficPolicy as Cluster (upstream apiservice.InternalPolicyLocal)', () => {
    const r = v4(makeService('ns', 's', { internalTrafficPolicy: 'Node' }));
    expect(r.problems).toEqual([]);
    expect(r.ports[0]?.internalPolicyLocal).toBe(false);
  });

  it('treats an unknown sessionAffinity as None (upstream newBaseServiceInfo: only ClientIP is sticky)', () => {
    const r = v4(makeService('ns', 's', { sessionAffinity: 'Cookie', spec: { sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } } }));
    expect(r.problems).toEqual([]);
    expect(r.ports[0]?.sessionAffinityTimeout).toBe(0);
  });

  it('programs an unknown type as a plain ClusterIP service (upstream ShouldSkipService skips only ExternalName; apiservice.ExternallyAccessible, NeedsHealthCheck)', () => {
    const svc = makeService('ns', 's', {
      type: 'Nodeport',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      externalIPs: ['192.168.99.1'],
      ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
    });
    const r = v4(svc);
    expect(r.problems).toEqual([]);
    // Node port and external IPs as the service states them; eTP Local and the health check need a known external type.
    expect(r.ports[0]).toMatchObject({
      clusterIP: expect.any(String),
      nodePort: 30080,
      externalIPs: ['192.168.99.1'],
      externalPolicyLocal: false,
      healthCheckNodePort: 0,
    });
    // Without node port or external IPs it is exactly a ClusterIP service.
    const plain = v4(makeService('ns', 's', { type: 'Weird' })).ports[0];
    expect(plain).toEqual(v4(makeService('ns', 's', { type: 'ClusterIP' })).ports[0]);
  });

  it('writes a ClientIP timeout above 86400 as given (upstream newBaseServiceInfo: stickyMaxAgeSeconds)', () => {
    expect(v4(makeService('ns', 's', { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 100000 })).ports[0]?.sessionAffinityTimeout).toBe(100000);
    expect(v4(makeService('ns', 's', { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 2147483647 })).ports[0]?.sessionAffinityTimeout).toBe(
      2147483647,
    );
  });

  it.each([
    ['spec.type', { spec: { type: 5 } }, 'must be a string, got 5'],
    ['spec.externalTrafficPolicy', { type: 'NodePort', spec: { externalTrafficPolicy: ['Local'] } }, 'must be a string, got ["Local"]'],
    ['spec.internalTrafficPolicy', { spec: { internalTrafficPolicy: true } }, 'must be a string, got true'],
    ['spec.sessionAffinity', { spec: { sessionAffinity: {} } }, 'must be a string, got {}'],
    [
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
      { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 2147483648 },
      'must be an integer from 1 to 2147483647; got 2147483648',
    ],
    // Upstream would write "--seconds 0", which iptables refuses (1-4294967295): its whole restore would fail.
    [
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
      { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 0 },
      'must be an integer from 1 to 2147483647; got 0',
    ],
  ])('skips the whole service when %s could not be decoded or programmed by upstream (%j)', (field, opts, reason) => {
    expect(texts(v4(makeService('ns', 's', opts)))).toEqual([`Service ns/s: ${field}: ${reason}`]);
    expect(v4(makeService('ns', 's', opts)).ports).toEqual([]);
  });

  it('does not program a Service with clusterIPs but no clusterIP, and says so (upstream ShouldSkipService: IsServiceIPSet)', () => {
    for (const clusterIP of [undefined, '']) {
      const svc = makeService('ns', 's', { clusterIPs: ['172.30.0.10'], spec: { clusterIP } });
      const r = v4(svc);
      expect(r.ports).toEqual([]);
      expect(texts(r)).toEqual([
        'Service ns/s: spec.clusterIP: missing while spec.clusterIPs is set; upstream programs no Service without spec.clusterIP',
      ]);
    }
  });

  it('takes cluster IPs from clusterIPs by ipFamilies position, and only clusterIP without ipFamilies (upstream GetClusterIPByFamily)', () => {
    const noList = makeService('ns', 's', { clusterIP: '172.30.0.10', spec: { clusterIPs: undefined } });
    expect(v4(noList).ports).toEqual([]);
    expect(texts(v4(noList))).toEqual([
      'Service ns/s: spec.clusterIPs: has no entry for IPv4 (spec.ipFamilies[0]); upstream reads cluster IPs from spec.clusterIPs',
    ]);
    const noFamilies = makeService('ns', 's', { clusterIPs: ['172.30.0.10', 'fd00::10'], spec: { ipFamilies: undefined } });
    expect(v4(noFamilies).ports[0]?.clusterIP).toBe('172.30.0.10');
    expect(v6(noFamilies).ports).toEqual([]);
    expect(texts(v6(noFamilies))).toEqual([
      'Service ns/s: spec.clusterIPs[1]: fd00::10 not programmed: without spec.ipFamilies upstream proxies spec.clusterIP only',
    ]);
  });

  it('keeps the last of two ports with the same name and protocol, naming the other (upstream serviceToServiceMap)', () => {
    const r = v4(
      makeService('ns', 's', {
        ports: [
          { name: 'dns', port: 53 },
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns', port: 5353 },
        ],
      }),
    );
    expect(r.ports.map((p) => [p.portName, p.protocol, p.port])).toEqual([
      ['dns', 'UDP', 53],
      ['dns', 'TCP', 5353],
    ]);
    expect(texts(r)).toEqual(['Service ns/s: spec.ports[0]: replaced by spec.ports[2] (same name "dns" and protocol TCP); upstream keeps the last']);
  });
});

describe('servicePortsFor: malformed ports and objects', () => {
  it('skips only the bad ports, naming each', () => {
    const svc = makeService('ns', 's', {
      type: 'NodePort',
      ports: [
        { name: 'ok', port: 80 },
        { name: 'big', port: 70000 },
        { name: 'str', port: '81' },
        { name: 'proto', port: 82, protocol: 'ICMP' },
        { name: 'np', port: 83, nodePort: -1 },
        'junk',
        { name: 'ok2', port: 85, nodePort: 0 },
      ],
    });
    const r = v4(svc);
    expect(r.ports.map((p) => [p.portName, p.port, p.nodePort])).toEqual([
      ['ok', 80, 0],
      ['ok2', 85, 0],
    ]);
    expect(texts(r)).toEqual([
      'Service ns/s: spec.ports[1].port: must be an integer from 1 to 65535; got 70000',
      'Service ns/s: spec.ports[2].port: must be an integer from 1 to 65535; got "81"',
      'Service ns/s: spec.ports[3].protocol: must be TCP, UDP or SCTP; got "ICMP"',
      'Service ns/s: spec.ports[4].nodePort: must be an integer from 1 to 65535 (or 0 for none); got -1',
      'Service ns/s: spec.ports[5]: not an object (got "junk")',
    ]);
  });

  it('skips names no iptables rule can carry (control characters), naming the object; quotes and blanks are kept', () => {
    expect(texts(v4(makeService('ns', 'new\nline')))).toEqual([
      'Service ns/new\nline: metadata.name: contains a control character ("new\\nline"); no iptables rule can carry it',
    ]);
    expect(v4(makeService('ns', 'new\nline')).ports).toEqual([]);
    expect(texts(v4(makeService('n\u0000s', 'svc')))[0]).toMatch(/metadata\.namespace: contains a control character/);
    const port = v4(
      makeService('ns', 'svc', {
        ports: [
          { name: 'p\r80', port: 80 },
          { name: 'ok', port: 81 },
        ],
      }),
    );
    expect(port.ports.map((p) => p.portName)).toEqual(['ok']);
    expect(texts(port)).toEqual(['Service ns/svc: spec.ports[0].name: contains a control character ("p\\r80"); no iptables rule can carry it']);
    const odd = v4(makeService('team a', 'quote"d\ttab', { ports: [{ name: 'p "80', port: 80 }] }));
    expect(odd.problems).toEqual([]);
    expect(odd.ports.map((p) => p.key)).toEqual(['team a/quote"d\ttab:p "80']);
  });

  it('reports objects without name or namespace, and non-objects', () => {
    expect(texts(v4({ metadata: { namespace: 'ns' }, spec: { clusterIP: '1.2.3.4' } }))).toEqual(['Service ns/: metadata.name: missing']);
    expect(texts(v4({ metadata: { name: 's' }, spec: { clusterIP: '1.2.3.4' } }))).toEqual(['Service s: metadata.namespace: missing']);
    expect(texts(v4('nope'))).toEqual(['Service : not an object (got "nope")']);
    expect(texts(v4({ metadata: { name: 's', namespace: 'ns' }, spec: [] }))).toEqual(['Service ns/s: spec: not an object (got [])']);
  });
});
