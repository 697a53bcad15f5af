import { describe, expect, it } from 'vitest';
import { endpointBase, endpointNames, hashAndTruncate, isAffinitySetName, isServiceChainName, servicePortBase, servicePortNames } from './names.ts';
import { nftComment } from './model.ts';

const port = (namespace: string, name: string, portName: string, protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') => ({
  namespace,
  name,
  portName,
  protocol,
});
const LONG = port(
  'very-long-namespace-name-abcdefghijklmnopqrstuvwxyz0123456789xx',
  'very-long-service-name-why-would-you-even-do-this-i-mean-really',
  'port-443-providing-the-hypertext-transmission-protocol-with-tls',
  'SCTP',
);
const LONG_TEXT = `${LONG.namespace}/${LONG.name}/sctp/${LONG.portName}`;

describe('chain names (upstream Test_servicePortChainNameBase)', () => {
  it.each([
    ['simple', port('testing', 'service', 'http'), 'P4ZYZVCF-testing/service/tcp/http'],
    ['different port, different hash', port('testing', 'service', 'https'), 'LZBRENCP-testing/service/tcp/https'],
    ['fixture service', port('ns1', 'svc1', 'p80'), 'ULMVA6XW-ns1/svc1/tcp/p80'],
    ['max length', LONG, `KR6NACJP-${LONG_TEXT}`],
  ])('%s', (_name, sp, expected) => expect(servicePortBase(sp)).toBe(expected));

  it('prefixes every chain of one port with the same base', () => {
    expect(servicePortNames(port('ns2', 'svc2', 'p80'))).toEqual({
      service: 'service-42NFTM6N-ns2/svc2/tcp/p80',
      local: 'local-42NFTM6N-ns2/svc2/tcp/p80',
      external: 'external-42NFTM6N-ns2/svc2/tcp/p80',
      firewall: 'firewall-42NFTM6N-ns2/svc2/tcp/p80',
    });
  });
});

describe('endpoint chain names (upstream Test_servicePortEndpointChainNameBase)', () => {
  const svc = port('testing', 'service', 'http');
  it.each([
    ['simple', svc, { ip: '10.180.0.1', port: 80 }, 'JO2XBXZR-testing/service/tcp/http__10.180.0.1/80'],
    ['different endpoint, different hash', svc, { ip: '10.180.0.2', port: 80 }, '5S6H3H22-testing/service/tcp/http__10.180.0.2/80'],
    ['ipv6', svc, { ip: 'fd80:abcd:12::a1b2:c3d4:e5f6:9999', port: 80 }, 'U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80'],
    [
      'max length without truncation',
      LONG,
      { ip: '1234:5678:9abc:def0::abc:1234', port: 443 },
      `5YS7AFEA-${LONG_TEXT}__1234.5678.9abc.def0..abc.1234/443`,
    ],
    ['truncated, 1', LONG, { ip: '1234:5678:9abc:def0::abcd:1234:5678', port: 443 }, `CI6C53Q3-${LONG_TEXT}__1234.5678.9abc.def0..abcd.1234...`],
    [
      'truncated, 2 (different IP, which is not visible in the result)',
      LONG,
      { ip: '1234:5678:9abc:def0::abcd:1234:8765', port: 443 },
      `2FLXFK6X-${LONG_TEXT}__1234.5678.9abc.def0..abcd.1234...`,
    ],
  ])('%s', (_name, sp, ep, expected) => {
    const base = endpointBase(sp, ep);
    expect(base).toBe(expected);
    expect(base.length).toBeLessThanOrEqual(240);
  });

  it('shares the base between the endpoint chain and its affinity set', () => {
    expect(endpointNames(port('ns1', 'svc1', 'p80'), { ip: '10.180.0.1', port: 80 })).toEqual({
      chain: 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80',
      affinitySet: 'affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80',
    });
  });
});

describe('object classes (upstream isServiceChainName, isAffinitySetName)', () => {
  it('tells per-service chains by their slash', () => {
    expect(isServiceChainName('service-ULMVA6XW-ns1/svc1/tcp/p80')).toBe(true);
    expect(isServiceChainName('mark-for-masquerade')).toBe(false);
    expect(isAffinitySetName('affinity-X-ns/s/tcp/p__1.2.3.4/80')).toBe(true);
    expect(isAffinitySetName('cluster-ips')).toBe(false);
  });

  it('hashAndTruncate leaves a name of exactly 240 characters alone', () => {
    const name = 'x'.repeat(231);
    expect(hashAndTruncate(name)).toHaveLength(240);
    expect(hashAndTruncate(name + 'y')).toMatch(/\.\.\.$/);
  });
});

describe('names nft cannot take (no API server accepts them; --objects files may hold them)', () => {
  it('writes "_" for each character outside letters, digits, "/", "-", "_" and ".", hashing the name as it is', () => {
    const odd = servicePortBase(port('q"uote', 'with space', 'x"y z'));
    expect(odd).toMatch(/^[A-Z2-7]{8}-q_uote\/with_space\/tcp\/x_y_z$/);
    // Two names that read the same once written keep distinct hashes, so distinct chains.
    expect(servicePortBase(port('q_uote', 'with_space', 'x_y_z'))).not.toBe(odd);
    expect(servicePortBase(port('日本語', '#hash', 'emoji\u{1F600}'))).toMatch(/^[A-Z2-7]{8}-___\/_hash\/tcp\/emoji_$/);
    // Names the API server accepts are left as upstream writes them.
    expect(servicePortBase(LONG)).toBe(`KR6NACJP-${LONG_TEXT}`);
  });
});

describe('nftComment (element comments: "namespace/name:port")', () => {
  it('cuts to 128 bytes at a character boundary, drops double quotes, writes control characters and lone surrogates as nft reads them back', () => {
    expect(nftComment(`${'a'.repeat(63)}/${'b'.repeat(63)}:p`)).toBe(`${'a'.repeat(63)}/${'b'.repeat(63)}:`);
    expect(Buffer.byteLength(nftComment('日'.repeat(50)))).toBe(126); // 42 whole characters of 3 bytes
    expect(nftComment('q"uote/svc:x"y z')).toBe('quote/svc:xy z');
    expect(nftComment('tab\there')).toBe('tab here');
    expect(nftComment('l\ud800/svc:http')).toBe('l\ufffd/svc:http');
    expect(nftComment('ns1/svc1:p80')).toBe('ns1/svc1:p80');
  });
});
