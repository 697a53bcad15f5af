import { describe, expect, it } from 'vitest';
import { cleanupRestoreText, planCleanup } from './cleanup.ts';
import { parseSave } from './parse-save.ts';

describe('cleanupRestoreText: what --cleanup removes (upstream CleanupLeftovers deletes its own jump rules by their exact spec)', () => {
  it("keeps a foreign rule whose comment quotes a jump to kube-proxy's chain", () => {
    const live = parseSave(
      `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -p tcp -m comment --comment "ssh stays open, whatever -j KUBE-SERVICES rejects" -m tcp --dport 22 -j ACCEPT
-A FORWARD -m comment --comment "don\\'t -g KUBE-SERVICES from here" -j DOCKER-USER
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
COMMIT
`,
      'IPv4',
    );
    expect(cleanupRestoreText(live)).toBe(
      `*filter
:KUBE-SERVICES - [0:0]
-D OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-X KUBE-SERVICES
COMMIT
`,
    );
  });
});

/**
 * The CNI portmap plugin configured with `"externalSetMarkChain": "KUBE-MARK-MASQ"` (its README's Kubernetes
 * example) marks hairpin and localhost hostPort traffic by jumping to kube-proxy's KUBE-MARK-MASQ from its own
 * chains (here as portmap writes them for a pod 10.244.1.2 with hostPort 8080).
 */
const PORTMAP_NODE = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-DN-9e1f0c5d2b7a4e3f8a6c1 - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-OLD4ENDPOINTCHAIN - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 10.244.1.2/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A CNI-DN-9e1f0c5d2b7a4e3f8a6c1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.244.1.2:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"k8s-pod-network\\" id: \\"0f8f6bb1c4a5\\"" -m multiport --dports 8080 -j CNI-DN-9e1f0c5d2b7a4e3f8a6c1
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-OLD4ENDPOINTCHAIN -s 10.0.0.1/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-OLD4ENDPOINTCHAIN -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 10.0.0.1:6443
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https" -j KUBE-SEP-OLD4ENDPOINTCHAIN
COMMIT
`;

describe("cleanupRestoreText: a kube-proxy chain another tool's rules jump to (upstream CleanupLeftovers leaves it: most releases never remove KUBE-MARK-MASQ, the others fail on the busy chain)", () => {
  it("keeps KUBE-MARK-MASQ, rule and all, for portmap's hostPort chains, and removes every other chain and the built-in jumps", () => {
    const text = cleanupRestoreText(parseSave(PORTMAP_NODE, 'IPv4'))!;
    expect(text.split('\n').filter((l) => /KUBE-MARK-MASQ|CNI-/.test(l) && !l.startsWith('-A KUBE-SEP-'))).toEqual([]);
    expect(text.match(/^-X .*/gm)).toEqual([
      '-X KUBE-NODEPORTS',
      '-X KUBE-POSTROUTING',
      '-X KUBE-SEP-OLD4ENDPOINTCHAIN',
      '-X KUBE-SERVICES',
      '-X KUBE-SVC-NPX46M4PTMTKRN6Y',
    ]);
    expect(text.match(/^-D .*/gm)).toEqual([
      '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]);
  });

  it('keeps what a kept chain jumps to, and removes it all once no other rule jumps there', () => {
    const withHook = PORTMAP_NODE.replace(
      '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n',
      '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n-A KUBE-MARK-MASQ -j KUBE-POSTROUTING\n',
    );
    expect(cleanupRestoreText(parseSave(withHook, 'IPv4'))!.match(/^-X .*/gm)).toEqual([
      '-X KUBE-NODEPORTS',
      '-X KUBE-SEP-OLD4ENDPOINTCHAIN',
      '-X KUBE-SERVICES',
      '-X KUBE-SVC-NPX46M4PTMTKRN6Y',
    ]);
    // For the log: each chain kept, with the chains that jump to it (portmap's, then the kept chain on the way).
    expect(planCleanup(parseSave(withHook, 'IPv4')).kept).toEqual([
      { table: 'nat', chain: 'KUBE-MARK-MASQ', jumpedFrom: ['CNI-DN-9e1f0c5d2b7a4e3f8a6c1'] },
      { table: 'nat', chain: 'KUBE-POSTROUTING', jumpedFrom: ['KUBE-MARK-MASQ'] },
    ]);
    const withoutPortmap = PORTMAP_NODE.split('\n')
      .filter((l) => !l.includes('CNI-'))
      .join('\n');
    expect(cleanupRestoreText(parseSave(withoutPortmap, 'IPv4'))!.match(/^-X .*/gm)).toContain('-X KUBE-MARK-MASQ');
  });
});
