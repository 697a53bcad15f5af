import { describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import type { Logger } from '../proxier/log.ts';
import { removeModes } from './mode-switch.ts';

/** The CNI portmap plugin with `externalSetMarkChain: KUBE-MARK-MASQ`: its hostPort chain jumps to kube-proxy's chain. */
const PORTMAP = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-DN-9e1f0c5d2b7a4e3f8a6c1 - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 10.244.1.2/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.2:80
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
COMMIT
`;

function recordingLogger(lines: { level: string; fields: object; message: string }[]): Logger {
  const at =
    (level: string) =>
    (a: object | string, b?: string): void =>
      void lines.push(typeof a === 'string' ? { level, fields: {}, message: a } : { level, fields: a, message: b ?? '' });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

describe('removeModes (--cleanup and the mode switch, upstream CleanupLeftovers)', () => {
  it("logs each kube-proxy chain it keeps because another tool's chain jumps to it, and which chain that is", async () => {
    const ipt = new FakeIptables({ family: 'IPv4', backend: 'nft' });
    await ipt.restore(PORTMAP, { noflush: false, counters: false });
    const lines: { level: string; fields: object; message: string }[] = [];
    expect(await removeModes(null, { iptables: [{ backend: 'nft', ipt }], deleteNftTable: null }, recordingLogger(lines))).toBe(0);
    expect(lines).toEqual([
      { level: 'info', fields: { backend: 'nft', ipFamily: 'IPv4', chains: 2 }, message: 'removed iptables-, userspace- and ipvs-mode rules' },
      {
        level: 'info',
        fields: { backend: 'nft', ipFamily: 'IPv4', table: 'nat', chain: 'KUBE-MARK-MASQ', jumpedFrom: ['CNI-DN-9e1f0c5d2b7a4e3f8a6c1'] },
        message: 'kept chain KUBE-MARK-MASQ (table nat): CNI-DN-9e1f0c5d2b7a4e3f8a6c1 jumps to it, rules another tool still uses',
      },
    ]);
    expect(await ipt.save(['nat'])).toContain('-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 10.244.1.2/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ');
  });

  it('logs nothing kept once no other chain jumps there, and removes the chain', async () => {
    const ipt = new FakeIptables({ family: 'IPv4', backend: 'nft' });
    await ipt.restore(PORTMAP.replace(/^-A CNI-DN-\S+ -s .*\n/m, ''), { noflush: false, counters: false });
    const lines: { level: string; fields: object; message: string }[] = [];
    await removeModes('nftables', { iptables: [{ backend: 'nft', ipt }], deleteNftTable: null }, recordingLogger(lines));
    expect(lines.map((l) => l.message)).toEqual(['removed iptables-, userspace- and ipvs-mode rules']);
    expect(await ipt.save(['nat'])).not.toContain('KUBE-MARK-MASQ');
  });
});
