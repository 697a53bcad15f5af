import { describe, expect, it } from 'vitest';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { endpointChainName } from './chain-names.ts';
import { readEndpointCounters, ruleComment } from './endpoint-counters.ts';
import { FakeIptables } from './fake-iptables.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset, type RenderOptions } from './render.ts';
import { toRestoreText } from './restore-text.ts';

const web = servicePort({ key: 'ns1/web:http', namespace: 'ns1', name: 'web', portName: 'http', clusterIP: '172.30.0.10', nodePort: 30080 });
const dns = servicePort({
  key: 'kube-system/dns:dns',
  namespace: 'kube-system',
  name: 'dns',
  portName: 'dns',
  protocol: 'UDP',
  clusterIP: '172.30.0.53',
  port: 53,
});
const WEB_EPS = [endpoint('10.244.1.2', { port: 8080 }), endpoint('10.244.1.3', { port: 8080 }), endpoint('10.244.2.2', { port: 8080 })];
const DNS_EPS = [endpoint('10.244.1.3', { port: 53 })];

/** The rendered rules loaded into a fake, with traffic on some endpoints. */
async function loaded(options: Partial<RenderOptions> = {}): Promise<FakeIptables> {
  const fake = new FakeIptables();
  const r = renderRuleset(snapshotOf([portState(web, WEB_EPS), portState(dns, DNS_EPS)]), { ...DEFAULT_RENDER_OPTIONS, ...options });
  await fake.restore(toRestoreText(r.ruleset, { builtins: 'insert' }), { noflush: true, counters: false });
  fake.count('nat', endpointChainName(web, WEB_EPS[0]!), '-j DNAT', 5, 300);
  fake.count('nat', endpointChainName(web, WEB_EPS[2]!), '-j DNAT', 2, 120);
  fake.count('nat', endpointChainName(dns, DNS_EPS[0]!), '-j DNAT', 9, 540);
  // The hairpin rule of the same chain counts too, but is not the endpoint's figure.
  fake.count('nat', endpointChainName(web, WEB_EPS[0]!), 'KUBE-MARK-MASQ', 1, 60);
  return fake;
}

const figures = (text: string) =>
  readEndpointCounters(text)
    .map((c) => `${c.service} ${c.endpoint} ${c.packets}/${c.bytes}`)
    .sort();

const WANT = [
  'kube-system/dns:dns 10.244.1.3:53 9/540',
  'ns1/web:http 10.244.1.2:8080 5/300',
  'ns1/web:http 10.244.1.3:8080 0/0',
  'ns1/web:http 10.244.2.2:8080 2/120',
];

describe('readEndpointCounters', () => {
  it("reads each KUBE-SEP chain's DNAT counters with its service and endpoint, zero for an endpoint nothing reached", async () => {
    const fake = await loaded();
    const text = await fake.save(['filter', 'nat'], { counters: true });
    expect(figures(text)).toEqual(WANT);
    expect(readEndpointCounters(text).find((c) => c.endpoint === '10.244.1.2:8080')?.chain).toBe(endpointChainName(web, WEB_EPS[0]!));
  });

  it('finds the service through the KUBE-SERVICES entry when upstream leaves the comments out (large clusters)', async () => {
    const fake = await loaded({ largeClusterThreshold: 0 });
    const text = await fake.save(['nat'], { counters: true });
    expect(text).not.toMatch(/-A KUBE-SEP-\S+ -m comment/);
    expect(figures(text)).toEqual(WANT);
  });

  it('needs the counters: output without them, and other tables, give nothing', async () => {
    const fake = await loaded();
    expect(readEndpointCounters(await fake.save(['nat']))).toEqual([]);
    expect(readEndpointCounters(await fake.save(['filter'], { counters: true }))).toEqual([]);
  });

  it('reads IPv6 endpoints', async () => {
    const fake = new FakeIptables({ family: 'IPv6' });
    const v6 = servicePort({ key: 'ns1/v6:p80', name: 'v6', clusterIP: 'fd00::10' });
    const eps = [endpoint('fd00:244::2')];
    const r = renderRuleset(snapshotOf([portState(v6, eps)], { family: 'IPv6' }), DEFAULT_RENDER_OPTIONS);
    await fake.restore(toRestoreText(r.ruleset, { builtins: 'insert' }), { noflush: true, counters: false });
    fake.count('nat', endpointChainName(v6, eps[0]!), '-j DNAT', 4, 320);
    expect(figures(await fake.save(['nat'], { counters: true }))).toEqual(['ns1/v6:p80 [fd00:244::2]:80 4/320']);
  });

  it('reads comments quoted and escaped as iptables-save prints them', () => {
    expect(ruleComment('-m comment --comment ns1/web:http -j X')).toBe('ns1/web:http');
    expect(ruleComment('-m comment --comment "ns1/web:http cluster IP" -d 1.2.3.4/32')).toBe('ns1/web:http cluster IP');
    expect(ruleComment('-m comment --comment "a \\"b\\" \\\\c" -j X')).toBe('a "b" \\c');
    expect(ruleComment('-j X')).toBeNull();
  });
});
