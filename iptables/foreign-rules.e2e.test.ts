/**
 * Other tools' rules that name kube-proxy's chains. Upstream only ever
 * touches its own jump rules, checked and deleted by their exact spec
 * (EnsureRule's `iptables -C`, CleanupLeftovers' DeleteRule), and cannot
 * delete a chain another tool's rule jumps to; here the jump repair of every
 * full sync and `--cleanup` (and the switch to another mode) pick kube-proxy's
 * jumps by their target:
 * - an admin's rule whose comment says `-j KUBE-SERVICES` is not a jump to it;
 * - the CNI portmap plugin's hostPort chains that jump to KUBE-MARK-MASQ
 *   (`externalSetMarkChain`) keep it.
 * Real iptables, both backends, in a throw-away namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { silentLogger } from '../proxier/log.ts';
import { realClock } from '../src/system/clock.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { removeKubeProxyRules } from './cleanup.ts';
import type { IptablesBackend } from './iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { DEFAULT_RENDER_OPTIONS } from './render.ts';
import { createIptables } from './restore.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = 'kptforeignrules-node';

/** The admin's rules, as iptables-save prints them (its `\'` escape included), in the chains kube-proxy jumps from. */
const ADMIN = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m comment --comment "bastion: before any -j KUBE-SERVICES, ssh goes to the jump host" -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.22:22
-A POSTROUTING -s 192.0.2.0/24 -m comment --comment "lab: don\\'t -j KUBE-POSTROUTING this" -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m comment --comment "ssh stays open whatever -j KUBE-PROXY-FIREWALL drops" -m tcp --dport 22 -j ACCEPT
-A OUTPUT -p udp -m comment --comment "DNS to the resolver, even when -j KUBE-SERVICES rejects" -m udp --dport 53 -j ACCEPT
COMMIT
`;

const adminLines = ADMIN.split('\n').filter((l) => l.startsWith('-A '));

/** portmap's chains for a pod 10.244.1.2 with hostPort 8080, `externalSetMarkChain: KUBE-MARK-MASQ` (its README's Kubernetes example). */
const PORTMAP = `*nat
:CNI-DN-9e1f0c5d2b7a4e3f8a6c1 - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 10.244.1.2/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.2:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"k8s-pod-network\\" id: \\"0f8f6bb1c4a5\\"" -m multiport --dports 8080 -j CNI-DN-9e1f0c5d2b7a4e3f8a6c1
COMMIT
`;

const portmapLines = PORTMAP.split('\n').filter((l) => l.startsWith('-A '));

const EMPTY =
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' +
  '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';

const family: IPFamily = 'IPv4';
const sp = servicePort({
  key: 'default/kubernetes:https',
  namespace: 'default',
  name: 'kubernetes',
  portName: 'https',
  clusterIP: '10.96.0.1',
  port: 443,
});
const snap = snapshotOf([portState(sp, [endpoint('10.0.0.1', { port: 6443 })])]);

/**
 * A node with `before` restored, then kube-proxy-ts's iptables mode after two full syncs (the second repairs jumps
 * against the live rules), then `after` (rules that need kube-proxy's chains).
 */
async function nodeWith(backend: IptablesBackend, before: string, after = '') {
  const ipt = createIptables({ family, backend, runner: createExecaRunner({ netns: NS }) });
  await ipt.restore(EMPTY, { noflush: false, counters: false });
  if (before !== '') await ipt.restore(before, { noflush: true, counters: false });
  const sync = new IptablesMode({ iptables: new Map([[family, ipt]]), render: DEFAULT_RENDER_OPTIONS }, { clock: realClock, logger: silentLogger() });
  await sync.sync(snap, { periodic: false, previous: null });
  await sync.sync(snap, { periodic: true, previous: snap });
  if (after !== '') await ipt.restore(after, { noflush: true, counters: false });
  return { ipt, saved: async () => (await ipt.save(['filter', 'nat'])).split('\n') };
}

const has = (lines: readonly string[], wanted: readonly string[]) =>
  expect(lines.filter((l) => wanted.includes(l)).sort()).toEqual([...wanted].sort());

describe("other tools' rules that name kube-proxy's chains", () => {
  beforeAll(async () => {
    await net.sweepNamespaces('kptforeignrules');
    await net.addNamespace(NS);
  });
  afterAll(async () => net.deleteNamespace(NS));

  for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
    it(`an admin's rules whose comments quote a kube-proxy jump survive full syncs and --cleanup (${backend})`, async () => {
      const { ipt, saved } = await nodeWith(backend, ADMIN);
      let lines = await saved();
      has(lines, adminLines);
      expect(lines).toContain('-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');

      expect((await removeKubeProxyRules(ipt)).removed).toBeGreaterThan(0);
      lines = await saved();
      has(lines, adminLines);
      // kubelet's KUBE-FIREWALL (with its jumps) is all that stays, as upstream leaves it.
      expect(lines.filter((l) => /^:KUBE-/.test(l))).toEqual([':KUBE-FIREWALL - [0:0]']);
      expect(lines.filter((l) => / -j KUBE-(SERVICES|POSTROUTING|PROXY-FIREWALL|EXTERNAL-SERVICES|NODEPORTS|FORWARD)$/.test(l))).toEqual([]);
    });

    it(`portmap's hostPort chains keep KUBE-MARK-MASQ through --cleanup and the switch to another mode; the rest goes (${backend})`, async () => {
      const { ipt, saved } = await nodeWith(backend, '', PORTMAP);
      has(await saved(), [...portmapLines, '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000']);

      // What --cleanup and the nftables mode's start remove: every mode's chains.
      const first = await removeKubeProxyRules(ipt, { owners: ['iptables', 'userspace', 'ipvs'] });
      expect(first.removed).toBeGreaterThan(0);
      expect(first.kept).toEqual([{ table: 'nat', chain: 'KUBE-MARK-MASQ', jumpedFrom: ['CNI-DN-9e1f0c5d2b7a4e3f8a6c1'] }]);
      const lines = await saved();
      has(lines, [...portmapLines, '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000']);
      expect(lines.filter((l) => /^:KUBE-/.test(l))).toEqual([':KUBE-FIREWALL - [0:0]', ':KUBE-MARK-MASQ - [0:0]']);
      expect(lines.filter((l) => /-j KUBE-/.test(l) && !l.startsWith('-A CNI-') && !l.endsWith('-j KUBE-FIREWALL'))).toEqual([]);
      // Once portmap's pod is gone, the next cleanup removes KUBE-MARK-MASQ too.
      await ipt.restore('*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:CNI-DN-9e1f0c5d2b7a4e3f8a6c1 - [0:0]\n-X CNI-DN-9e1f0c5d2b7a4e3f8a6c1\nCOMMIT\n', {
        noflush: true,
        counters: false,
      });
      expect(await removeKubeProxyRules(ipt)).toEqual({ removed: 1, kept: [] });
      expect((await saved()).filter((l) => /^:KUBE-/.test(l))).toEqual([':KUBE-FIREWALL - [0:0]']);
    });
  }
});
