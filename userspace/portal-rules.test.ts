import { describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { getChain } from '../iptables/ruleset.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { trace } from '../iptables/trace.ts';
import { servicePort } from '../test/domain.ts';
import { renderPortals } from './portal-rules.ts';

// Upstream's portal rule shapes (pkg/proxy/userspace/proxier.go, iptablesContainerPortalArgs and friends) for default/web:http.
const web = servicePort({
  key: 'default/web:http',
  namespace: 'default',
  name: 'web',
  portName: 'http',
  clusterIP: '10.0.0.10',
  port: 80,
  nodePort: 30080,
  externalIPs: ['203.0.113.7'],
  loadBalancerVIPs: ['198.51.100.9'],
});
const rs = renderPortals([{ service: web, internalPort: 36123, externalPort: 36123, nodePortHeld: true }], {
  family: 'IPv4',
  hostIP: '192.168.1.5',
  bindAddress: '0.0.0.0',
});

describe('renderPortals', () => {
  it("writes upstream's portal rules", () => {
    const S = '-m comment --comment default/web:http -p tcp -m tcp --dport';
    expect(getChain(rs, 'nat', 'KUBE-PORTALS-CONTAINER')?.rules).toEqual([
      `${S} 80 -d 10.0.0.10/32 -j REDIRECT --to-ports 36123`,
      `${S} 80 -d 198.51.100.9/32 -j REDIRECT --to-ports 36123`,
      `${S} 80 -d 203.0.113.7/32 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 36123`,
      `${S} 80 -d 203.0.113.7/32 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 36123`,
    ]);
    expect(getChain(rs, 'nat', 'KUBE-PORTALS-HOST')?.rules).toEqual([
      `${S} 80 -d 10.0.0.10/32 -j DNAT --to-destination 192.168.1.5:36123`,
      `${S} 80 -d 198.51.100.9/32 -j DNAT --to-destination 192.168.1.5:36123`,
      `${S} 80 -d 203.0.113.7/32 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.1.5:36123`,
    ]);
    expect(getChain(rs, 'nat', 'KUBE-NODEPORT-CONTAINER')?.rules).toEqual([`${S} 30080 -j REDIRECT --to-ports 36123`]);
    expect(getChain(rs, 'nat', 'KUBE-NODEPORT-HOST')?.rules).toEqual([`${S} 30080 -j DNAT --to-destination 192.168.1.5:36123`]);
    expect(getChain(rs, 'filter', 'KUBE-NODEPORT-NON-LOCAL')?.rules).toEqual([`${S} 36123 -m state --state NEW -j ACCEPT`]);
  });

  it('DNATs container traffic to a specific --bind-address and leaves out node ports it could not hold', () => {
    const r = renderPortals([{ service: web, internalPort: 4000, externalPort: 4001, nodePortHeld: false }], {
      family: 'IPv4',
      hostIP: '192.168.1.5',
      bindAddress: '192.168.1.5',
    });
    expect(getChain(r, 'nat', 'KUBE-PORTALS-CONTAINER')?.rules[0]).toMatch(/-d 10.0.0.10\/32 -j DNAT --to-destination 192.168.1.5:4000$/);
    expect(getChain(r, 'nat', 'KUBE-PORTALS-CONTAINER')?.rules[1]).toMatch(/-d 198.51.100.9\/32 -j DNAT --to-destination 192.168.1.5:4001$/);
    expect(getChain(r, 'nat', 'KUBE-NODEPORT-CONTAINER')?.rules).toEqual([]);
  });

  it('sends a cluster IP packet to the listener: redirected from pods, DNATed from the node', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    await fake.restore(toRestoreText(rs, { builtins: 'insert' }), { noflush: true, counters: false });
    const live = parseSave(await fake.save(), 'IPv4');
    const fromPod = trace(
      live,
      { src: '10.244.1.2', dst: '10.0.0.10', protocol: 'TCP', dport: 80, origin: 'external', inInterface: 'cbr0' },
      { localAddresses: ['192.168.1.5'] },
    );
    expect(fromPod.branches).toMatchObject([{ verdict: 'ACCEPT', redirected: true, dnat: { port: 36123 } }]);
    const fromNode = trace(
      live,
      { src: '192.168.1.5', dst: '10.0.0.10', protocol: 'TCP', dport: 80, origin: 'local' },
      { localAddresses: ['192.168.1.5'] },
    );
    expect(fromNode.endpoints).toEqual(['192.168.1.5:36123']);
    const nodePort = trace(
      live,
      { src: '203.0.113.50', dst: '192.168.1.5', protocol: 'TCP', dport: 30080, origin: 'external', inInterface: 'eth0' },
      { localAddresses: ['192.168.1.5'] },
    );
    expect(nodePort.branches).toMatchObject([{ verdict: 'ACCEPT', redirected: true, dnat: { port: 36123 } }]);
  });
});

describe('renderPortals: externalTrafficPolicy Local (separate external listener)', () => {
  const split = renderPortals([{ service: web, internalPort: 36123, externalPort: 36124, nodePortHeld: true }], {
    family: 'IPv4',
    hostIP: '192.168.1.5',
    bindAddress: '0.0.0.0',
    localMatch: '-s 10.244.0.0/16',
  });
  const rules = (chain: string) => getChain(split, 'nat', chain)!.rules;

  it('sends pods to the internal listener (all endpoints) before the external one, for every external address and the node port', () => {
    for (const chain of ['KUBE-PORTALS-CONTAINER', 'KUBE-NODEPORT-CONTAINER']) {
      const ext = rules(chain).filter((r) => !r.includes(`-d ${web.clusterIP}/32`));
      expect(ext.length).toBeGreaterThan(0);
      for (let i = 0; i < ext.length; i += 2) {
        expect(ext[i]).toMatch(/-s 10\.244\.0\.0\/16 -j REDIRECT --to-ports 36123$/);
        expect(ext[i + 1]).toMatch(/-j REDIRECT --to-ports 36124$/);
        expect(ext[i + 1]).not.toContain('-s 10.244.0.0/16');
      }
    }
  });

  it('sends node-originated traffic to the internal listener', () => {
    for (const chain of ['KUBE-PORTALS-HOST', 'KUBE-NODEPORT-HOST']) {
      for (const r of rules(chain)) expect(r).toMatch(/--to-destination 192\.168\.1\.5:36123$/);
    }
  });

  it('without local-traffic detection, containers all go to the external listener', () => {
    const none = renderPortals([{ service: web, internalPort: 36123, externalPort: 36124, nodePortHeld: true }], {
      family: 'IPv4',
      hostIP: '192.168.1.5',
      bindAddress: '0.0.0.0',
    });
    expect(getChain(none, 'nat', 'KUBE-NODEPORT-CONTAINER')!.rules).toEqual([expect.stringMatching(/--to-ports 36124$/)]);
  });
});
