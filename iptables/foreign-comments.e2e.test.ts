/**
 * Rules of the node's admin (or any other tool) whose comments name a
 * kube-proxy jump in their text: `-m comment --comment "... -j KUBE-SERVICES ..."`.
 * Upstream only ever touches its own jump rules, checked and deleted by their
 * exact spec (EnsureRule's `iptables -C`, CleanupLeftovers' DeleteRule); here
 * the jump repair of every full sync and `--cleanup` pick kube-proxy's jumps
 * by their target, which must be the rule's -j/-g word and never quoted text.
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
const NS = 'kptforeigncomment-node';

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

describe("the admin's rules whose comments quote a kube-proxy jump", () => {
  beforeAll(async () => {
    await net.sweepNamespaces('kptforeigncomment');
    await net.addNamespace(NS);
  });
  afterAll(async () => net.deleteNamespace(NS));

  for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
    it(`survive full syncs and --cleanup, which remove kube-proxy's own jumps only (${backend})`, async () => {
      const family: IPFamily = 'IPv4';
      const ipt = createIptables({ family, backend, runner: createExecaRunner({ netns: NS }) });
      await ipt.restore(ADMIN, { noflush: false, counters: false });
      const sp = servicePort({
        key: 'default/kubernetes:https',
        namespace: 'default',
        name: 'kubernetes',
        portName: 'https',
        clusterIP: '10.96.0.1',
        port: 443,
      });
      const snap = snapshotOf([portState(sp, [endpoint('10.0.0.1', { port: 6443 })])]);
      const sync = new IptablesMode(
        { iptables: new Map([[family, ipt]]), render: DEFAULT_RENDER_OPTIONS },
        { clock: realClock, logger: silentLogger() },
      );
      const saved = async () => (await ipt.save(['filter', 'nat'])).split('\n');

      await sync.sync(snap, { periodic: false, previous: null });
      await sync.sync(snap, { periodic: true, previous: snap }); // a second full sync repairs jumps against the live rules
      let lines = await saved();
      expect(lines.filter((l) => adminLines.includes(l)).sort()).toEqual([...adminLines].sort());
      expect(lines).toContain('-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');

      expect(await removeKubeProxyRules(ipt)).toBeGreaterThan(0);
      lines = await saved();
      expect(lines.filter((l) => adminLines.includes(l)).sort()).toEqual([...adminLines].sort());
      // kubelet's KUBE-FIREWALL (with its jumps) is all that stays, as upstream leaves it.
      expect(lines.filter((l) => /^:KUBE-/.test(l))).toEqual([':KUBE-FIREWALL - [0:0]']);
      expect(lines.filter((l) => / -j KUBE-(SERVICES|POSTROUTING|PROXY-FIREWALL|EXTERNAL-SERVICES|NODEPORTS|FORWARD)$/.test(l))).toEqual([]);
      await ipt.restore(
        '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
        {
          noflush: false,
          counters: false,
        },
      );
    });
  }
});
