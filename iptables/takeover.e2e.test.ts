/**
 * Taking over a node from an older kube-proxy: the tables hold what a
 * 2016-era kube-proxy (v1.4) left, including its filter OUTPUT jump to
 * KUBE-SERVICES without `-m conntrack --ctstate NEW`. Jump rules are compared
 * by their full normalised spec (what `iptables -C` checks): `diff` reports
 * the old variant, the first full sync replaces it (deleted and inserted in
 * the same restore), and the node then diffs converged. Real iptables, both
 * backends, in a throw-away namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { silentLogger } from '../proxier/log.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { diffRulesets, formatDiff } from './diff.ts';
import type { Iptables, IptablesBackend } from './iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { realClock } from '../src/system/clock.ts';
import { parseSave } from './parse-save.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset } from './render.ts';
import { createIptables } from './restore.ts';
import { getChain } from './ruleset.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = 'kpttakeover-node';

/** iptables-save of a node that kube-proxy v1.4 (2016) ran on: one service, kubelet's firewall chain. */
const DUMP_2016 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-OLD4ENDPOINTCHAIN - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-SEP-OLD4ENDPOINTCHAIN -s 10.0.0.1/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-OLD4ENDPOINTCHAIN -p tcp -m comment --comment "default/kubernetes:https" -m recent --set --name KUBE-SEP-OLD4ENDPOINTCHAIN --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.0.0.1:6443
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-OLD4ENDPOINTCHAIN --mask 255.255.255.255 --rsource -j KUBE-SEP-OLD4ENDPOINTCHAIN
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https" -j KUBE-SEP-OLD4ENDPOINTCHAIN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
`;

const OLD_JUMP = '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES';
const NEW_JUMP = '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES';

function snapshot(): Snapshot {
  const sp = servicePort({
    key: 'default/kubernetes:https',
    namespace: 'default',
    name: 'kubernetes',
    portName: 'https',
    clusterIP: '10.96.0.1',
    port: 443,
  });
  return snapshotOf([portState(sp, [endpoint('10.0.0.1', { port: 6443 })])]);
}

describe('taking over a node from a 2016-era kube-proxy', () => {
  beforeAll(async () => {
    await net.sweepNamespaces('kpttakeover');
    await net.addNamespace(NS);
  });
  afterAll(async () => net.deleteNamespace(NS));

  for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
    it(`replaces its filter OUTPUT jump (no --ctstate NEW) in the first full sync and converges (${backend})`, async () => {
      const family: IPFamily = 'IPv4';
      const ipt: Iptables = createIptables({ family, backend, runner: createExecaRunner({ netns: NS }) });
      await ipt.restore(DUMP_2016, { noflush: false, counters: false });
      const desired = renderRuleset(snapshot(), DEFAULT_RENDER_OPTIONS).ruleset;

      // diff names the old jump as unexpected and the new one as missing.
      const before = diffRulesets(desired, parseSave(await ipt.save(['filter', 'nat']), family));
      const jumps = before.groups.find((g) => g.title === 'jump rules')?.chains.find((c) => c.table === 'filter' && c.chain === 'OUTPUT');
      expect(jumps?.extraRules, formatDiff(before)).toEqual([OLD_JUMP.slice('-A OUTPUT '.length)]);
      expect(jumps?.missingRules.some((r) => r.includes('-j KUBE-SERVICES') && r.includes('--ctstate NEW'))).toBe(true);
      expect(formatDiff(before)).toContain(`      - ${OLD_JUMP}`);

      const sync = new IptablesMode(
        { iptables: new Map([[family, ipt]]), render: DEFAULT_RENDER_OPTIONS },
        { clock: realClock, logger: silentLogger() },
      );
      await sync.sync(snapshot(), { periodic: false, previous: null });
      const saved = await ipt.save(['filter', 'nat']);
      const output = getChain(parseSave(saved, family), 'filter', 'OUTPUT')!.rules.filter((r) => r.endsWith('-j KUBE-SERVICES'));
      expect(output.map((r) => `-A OUTPUT ${r}`)).toEqual([NEW_JUMP]);
      expect(diffRulesets(desired, parseSave(saved, family)).groups).toEqual([]);

      // A second full sync finds nothing to replace and leaves the built-in chains as they are.
      await sync.sync(snapshot(), { periodic: true, previous: snapshot() });
      const strip = (t: string) =>
        t
          .split('\n')
          .filter((l) => !l.startsWith('#'))
          .join('\n');
      expect(strip(await ipt.save(['filter', 'nat']))).toBe(strip(saved));
      await ipt.restore(
        '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
        { noflush: false, counters: false },
      );
    });
  }
});
