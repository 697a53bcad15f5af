/**
 * Namespace plumbing against the real kernel (needs root). Everything is
 * created under the prefix "kptnetns" and swept before and after.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecaRunner } from './exec.ts';
import { createNetnsOps } from './netns.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const P = 'kptnetns';
const A = `${P}-a`;
const B = `${P}-b`;
const CLIENT = fileURLToPath(new URL('../../test/netns/client.ts', import.meta.url));

async function ip(ns: string, ...args: string[]): Promise<string> {
  return (await runner.run('ip', ['-n', ns, ...args])).stdout;
}
/** What a TCP connection attempt from ns to ip:port ends in ("refused" proves the path both ways). */
async function tcpFrom(ns: string, ipAddr: string, port: number): Promise<string> {
  const r = await runner.run(process.execPath, [CLIENT, JSON.stringify({ proto: 'tcp', ip: ipAddr, port, count: 1, timeoutMs: 1000 })], {
    netns: ns,
  });
  const [first] = JSON.parse(r.stdout) as { ok: boolean; error?: string }[];
  return first?.ok === true ? 'ok' : (first?.error ?? 'none');
}

beforeAll(async () => {
  await net.sweepNamespaces(P);
});
afterAll(async () => {
  await net.sweepNamespaces(P);
});

describe('netns operations', () => {
  it('creates namespaces idempotently, loopback up', async () => {
    await net.addNamespace(A);
    await net.addNamespace(A);
    await net.addNamespace(B);
    const names = await net.listNamespaces();
    expect(names).toContain(A);
    expect(names).toContain(B);
    expect(await ip(A, 'link', 'show', 'lo')).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
  });

  it('connects two namespaces with a veth pair; addresses and routes are idempotent', async () => {
    await net.addVeth({ ns: A, name: 'eth0' }, { ns: B, name: 'eth0' });
    await net.addVeth({ ns: A, name: 'eth0' }, { ns: B, name: 'eth0' });
    await net.addAddress(A, 'eth0', '10.99.0.1/24');
    await net.addAddress(A, 'eth0', '10.99.0.1/24');
    await net.addAddress(B, 'eth0', '10.99.0.2/24');
    await net.linkUp(A, 'eth0');
    await net.linkUp(B, 'eth0');
    await net.addRoute(B, '10.98.0.0/16', { via: '10.99.0.1' });
    await net.addRoute(B, '10.98.0.0/16', { via: '10.99.0.1' });
    expect((await ip(A, '-4', 'addr', 'show', 'eth0')).match(/inet /g)).toHaveLength(1);
    expect(await ip(B, 'route')).toContain('10.98.0.0/16 via 10.99.0.1 dev eth0');
    // A closed port answers with RST: the packet went there and the answer came back.
    expect(await tcpFrom(A, '10.99.0.2', 9)).toBe('refused');
    expect(await tcpFrom(A, '10.77.0.1', 9)).toBe('net-unreachable');
  });

  it('enslaves a link to a bridge', async () => {
    await net.addBridge(A, 'br0');
    await net.addBridge(A, 'br0');
    await net.addVeth({ ns: A, name: 'vb1' }, { ns: B, name: 'vb1' });
    await net.setMaster(A, 'vb1', 'br0');
    await net.ipBatch(A, [
      ['link', 'set', 'br0', 'up'],
      ['link', 'set', 'vb1', 'up'],
    ]);
    expect(await ip(A, 'link', 'show', 'vb1')).toMatch(/master br0 state/);
  });

  it('rejects whitespace inside ip batch words, and reports the failing batch', async () => {
    await expect(net.ipBatch(A, [['link', 'set', 'eth0 up']])).rejects.toThrow(/without whitespace/);
    await expect(net.ipBatch(A, [['link', 'set', 'no-such-link', 'up']])).rejects.toThrow(
      /ip -n kptnetns-a -batch - exited with code 1: .*no-such-link/,
    );
  });

  it('sets sysctls inside the namespace only', async () => {
    const rootForward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
    const rootBridge = (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim();
    const flipped = rootBridge === '1' ? 0 : 1;
    await net.setSysctls(A, { 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.send_redirects': 0, 'net.bridge.bridge-nf-call-iptables': flipped });
    expect(await net.getSysctl(A, 'net.ipv4.ip_forward')).toBe('1');
    expect(await net.getSysctl(A, 'net.ipv4.conf.all.send_redirects')).toBe('0');
    // br_netfilter's switches are per network namespace (Linux >= 5.3).
    expect(await net.getSysctl(A, 'net.bridge.bridge-nf-call-iptables')).toBe(String(flipped));
    expect(await net.getSysctl(B, 'net.bridge.bridge-nf-call-iptables')).toBe(rootBridge);
    expect((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim()).toBe(rootForward);
    expect((await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim()).toBe(rootBridge);
    await expect(net.setSysctls(A, { 'net/ipv4/../../x': 1 })).rejects.toThrow(/invalid sysctl/);
  });

  it('deletes a namespace with a process inside, killing the process; deleting again is a no-op', async () => {
    const sleeper = execa('ip', ['netns', 'exec', B, 'sleep', '60'], { reject: false, stdin: 'ignore' });
    for (let i = 0; i < 50 && (await runner.run('ip', ['netns', 'pids', B])).stdout.trim() === ''; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await net.deleteNamespace(B);
    const result = await sleeper;
    expect(result.signal).toBe('SIGKILL');
    await net.deleteNamespace(B);
    expect(await net.listNamespaces()).not.toContain(B);
    // The veth ends in A went with their peers.
    expect(await ip(A, 'link')).not.toMatch(/eth0|vb1/);
  });

  it('sweeps exactly the namespaces under a prefix', async () => {
    await net.addNamespace(`${P}-c`);
    await net.addNamespace(`${P}x-other`);
    try {
      const swept = await net.sweepNamespaces(P);
      expect(swept.sort()).toEqual([A, `${P}-c`]);
      const left = await net.listNamespaces();
      expect(left).toContain(`${P}x-other`);
      expect(left.filter((n) => n.startsWith(`${P}-`))).toEqual([]);
    } finally {
      await net.deleteNamespace(`${P}x-other`);
    }
  });

  it('refuses names that are not plain namespace names', async () => {
    await expect(net.addNamespace('../etc')).rejects.toThrow(/invalid namespace name/);
    await expect(net.sweepNamespaces('')).rejects.toThrow(/invalid namespace prefix/);
    await expect(net.addVeth({ ns: A, name: 'a-very-long-interface' }, { ns: B, name: 'x' })).rejects.toThrow(/invalid link name/);
  });
});
