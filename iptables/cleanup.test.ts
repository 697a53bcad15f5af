import { describe, expect, it } from 'vitest';
import { cleanupRestoreText } from './cleanup.ts';
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
