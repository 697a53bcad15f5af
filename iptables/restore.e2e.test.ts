/**
 * The real adapter against the real binaries, both backends and both
 * families, inside a throw-away network namespace (needs root).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import type { IPFamily } from '../proxier/types.ts';
import { RestoreError, type IptablesBackend } from './iptables.ts';
import { createIptables, iptablesVersion, supportsRandomFully } from './restore.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptrestore';
const NS = `${PREFIX}-ns`;

beforeAll(async () => {
  await net.sweepNamespaces(PREFIX);
  await net.addNamespace(NS);
});
afterAll(async () => {
  await net.sweepNamespaces(PREFIX);
});

const cases: [IptablesBackend, IPFamily, string][] = [
  ['nft', 'IPv4', '10.96.0.10/32'],
  ['nft', 'IPv6', 'fd00:96::10/128'],
  ['legacy', 'IPv4', '10.96.0.10/32'],
  ['legacy', 'IPv6', 'fd00:96::10/128'],
];

describe.each(cases)('%s %s', (backend, family, vip) => {
  const ipt = createIptables({ family, backend, runner: createExecaRunner({ netns: NS }) });
  const ruleset = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-SVC-TEST - [0:0]',
    `-A KUBE-SERVICES -d ${vip} -p tcp -m comment --comment "ns/svc:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-TEST`,
    '-A KUBE-SVC-TEST -m statistic --mode random --probability 0.50000000000 -j RETURN',
    'COMMIT',
    '*filter',
    ':KUBE-FIREWALL-T - [0:0]',
    '-A KUBE-FIREWALL-T -m conntrack --ctstate NEW -j REJECT',
    'COMMIT',
    '',
  ].join('\n');

  it('restores, and save returns the rules as the kernel holds them', async () => {
    await ipt.restore(ruleset, { noflush: true, counters: false });
    const saved = await ipt.save(['nat', 'filter']);
    expect(saved).toMatch(/^\*nat$/m);
    expect(saved).toMatch(/^\*filter$/m);
    expect(saved).toContain(`-A KUBE-SERVICES -d ${vip} -p tcp -m comment --comment "ns/svc:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-TEST`);
    expect(saved).toContain('-A KUBE-FIREWALL-T -m conntrack --ctstate NEW -j REJECT');
    // Without tables: everything that exists.
    expect(await ipt.save()).toContain(':KUBE-SVC-TEST - [0:0]');
  });

  it('--noflush keeps chains the input does not mention; without it the table is replaced', async () => {
    await ipt.restore('*nat\n:KUBE-OTHER - [0:0]\n-A KUBE-OTHER -j RETURN\nCOMMIT\n', { noflush: true, counters: false });
    let nat = await ipt.save(['nat']);
    expect(nat).toContain(':KUBE-SVC-TEST - [0:0]');
    expect(nat).toContain('-A KUBE-OTHER -j RETURN');
    await ipt.restore('*nat\n:KUBE-OTHER - [0:0]\nCOMMIT\n', { noflush: false, counters: false });
    nat = await ipt.save(['nat']);
    expect(nat).not.toContain('KUBE-SVC-TEST');
    expect(nat).toContain(':KUBE-OTHER - [0:0]');
    expect(nat).not.toContain('-A KUBE-OTHER');
  });

  it('reports the failing line of a rule the kernel rejects (jump to a missing chain), applying nothing of the table', async () => {
    const bad = '*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\n-A KUBE-A -j KUBE-DOES-NOT-EXIST\nCOMMIT\n';
    const err = await ipt.restore(bad, { noflush: true, counters: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    const e = err as RestoreError;
    expect(e.line).toBe(4);
    expect(e.context).toContain('>     4: -A KUBE-A -j KUBE-DOES-NOT-EXIST');
    expect(e.exitCode).not.toBe(0);
    expect(e.message).toMatch(new RegExp(`${family === 'IPv6' ? 'ip6' : 'ip'}tables-${backend}-restore \\(netns ${NS}\\) failed .* at input line 4`));
    expect(await ipt.save(['nat'])).not.toContain('KUBE-A');
  });

  it('reports the failing line of a parse error (unknown match)', async () => {
    const bad = '*filter\n:KUBE-B - [0:0]\n-A KUBE-B -j RETURN\n-A KUBE-B -m no-such-match --x 1 -j ACCEPT\nCOMMIT\n';
    const e = (await ipt.restore(bad, { noflush: true, counters: false }).catch((x: unknown) => x)) as RestoreError;
    expect(e).toBeInstanceOf(RestoreError);
    expect(e.line).toBe(4);
    expect(e.stderr).toContain("Couldn't load match `no-such-match'");
  });

  it('reports input that ends without COMMIT', async () => {
    const e = (await ipt.restore('*filter\n:KUBE-C - [0:0]\n', { noflush: true, counters: false }).catch((x: unknown) => x)) as RestoreError;
    expect(e).toBeInstanceOf(RestoreError);
    expect(e.stderr).toMatch(/COMMIT expected at line 3/);
    expect(e.line).toBe(3);
  });

  it('keeps counters only with --counters', async () => {
    const input = '*filter\n:KUBE-D - [0:0]\n[7:420] -A KUBE-D -j RETURN\nCOMMIT\n';
    await ipt.restore(input, { noflush: true, counters: true });
    const withCounters = await runner.run(family === 'IPv6' ? `ip6tables-${backend}-save` : `iptables-${backend}-save`, ['-c', '-t', 'filter'], {
      netns: NS,
    });
    // ip6tables-nft-restore 1.8.9 drops the counters it is given (iptables-nft-restore keeps them).
    const kept = backend === 'nft' && family === 'IPv6' ? '[0:0]' : '[7:420]';
    expect(withCounters.stdout).toContain(`${kept} -A KUBE-D -j RETURN`);
    await ipt.restore(input, { noflush: true, counters: false });
    const without = await runner.run(family === 'IPv6' ? `ip6tables-${backend}-save` : `iptables-${backend}-save`, ['-c', '-t', 'filter'], {
      netns: NS,
    });
    expect(without.stdout).toContain('[0:0] -A KUBE-D -j RETURN');
  });
});

describe('iptablesVersion', () => {
  it('reads the installed version and backend', async () => {
    const inNs = createExecaRunner({ netns: NS });
    const nft = await iptablesVersion(inNs, { binary: 'iptables-nft' });
    const legacy = await iptablesVersion(inNs, { binary: 'iptables-legacy' });
    expect(nft.backend).toBe('nft');
    expect(legacy.backend).toBe('legacy');
    expect(nft.text).toBe(legacy.text);
    expect(supportsRandomFully(nft)).toBe(true);
  });
});
