import { describe, expect, it } from 'vitest';
import { missingNodeEffect, nodeNameFor } from './desired.ts';

describe('nodeNameFor (upstream GetHostname)', () => {
  it('takes --hostname-override, else the OS hostname (NODE_NAME in the DaemonSet), blanks trimmed, lower-cased', () => {
    expect(nodeNameFor({ hostnameOverride: ' Node-1.Example ' }, () => 'ignored')).toBe('node-1.example');
    expect(nodeNameFor({ hostnameOverride: '' }, () => 'Worker-7\n')).toBe('worker-7');
    expect(nodeNameFor({ hostnameOverride: '   ' }, () => ' host ')).toBe('host');
  });
});

describe('missingNodeEffect', () => {
  it('says what each mode loses without its Node', () => {
    expect(missingNodeEffect('iptables')).toBe('no node addresses, NodePorts match LOCAL addresses only; no zone, so topology hints are ignored');
    expect(missingNodeEffect('nftables')).toMatch(/^no node addresses, no primary IP, so NodePorts match every local address but loopback;/);
    expect(missingNodeEffect('userspace')).toMatch(/node-originated portal traffic goes to an interface's address/);
  });
});
