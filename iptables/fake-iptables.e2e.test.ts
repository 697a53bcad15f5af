/**
 * Differential test of FakeIptables against the real iptables-restore/-save
 * (both backends) in throw-away network namespaces (needs root): each
 * scenario runs through both, and they must agree on which restores fail,
 * on the failing line, and on the resulting tables (rules compared
 * normalised, since the kernel rewrites them and the fake does not).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { FakeIptables } from './fake-iptables.ts';
import { RestoreError, type Iptables, type IptablesBackend } from './iptables.ts';
import { parseSave } from './parse-save.ts';
import { createIptables } from './restore.ts';
import { normalizeRuleSpec } from './rule-normalize.ts';
import { KUBE_PROXY_RULES } from './trace.case.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptfake';

beforeAll(async () => {
  await net.sweepNamespaces(PREFIX);
});
afterAll(async () => {
  await net.sweepNamespaces(PREFIX);
});

type Step = readonly [text: string, noflush: boolean];
const BASE =
  '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n-A KUBE-SERVICES -d 1.1.1.1 -j KUBE-SVC-A\n-A KUBE-SVC-A -j KUBE-SEP-A\n-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80\n-A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n*filter\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n-A KUBE-FORWARD -s 1.1.1.1 -j ACCEPT\n-A KUBE-FORWARD -s 2.2.2.2 -j ACCEPT\n-A KUBE-FORWARD -s 3.3.3.3 -j ACCEPT\nCOMMIT\n';
const b = (...more: Step[]): Step[] => [[BASE, true], ...more];

const SCENARIOS: Record<string, Step[]> = {
  'redeclaring flushes, built-in declaration sets the policy only': b([
    '*nat\n:PREROUTING DROP [0:0]\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n',
    true,
  ]),
  'without noflush the table is replaced': b(
    ['*nat\n:KUBE-X - [0:0]\n-A PREROUTING -j KUBE-X\nCOMMIT\n', false],
    ['*filter\n:FORWARD DROP [0:0]\nCOMMIT\n', true],
    ['*filter\n:INPUT DROP [0:0]\nCOMMIT\n', false],
  ),
  '-A to a missing chain': b(['*nat\n:KUBE-C - [0:0]\n-A KUBE-C -j RETURN\n-A NOPE -j ACCEPT\nCOMMIT\n', true]),
  'jump to a missing chain': b(['*nat\n:KUBE-C - [0:0]\n-A KUBE-C -j RETURN\n-A KUBE-C -j KUBE-NOPE\n-A KUBE-C -j ACCEPT\nCOMMIT\n', true]),
  'jump to a chain declared later': b(['*nat\n:KUBE-Q - [0:0]\n-A KUBE-Q -j KUBE-W\n:KUBE-W - [0:0]\nCOMMIT\n', true]),
  '-X of a non-empty chain': b(['*nat\n-X KUBE-SEP-B\nCOMMIT\n', true]),
  '-X of a declared (flushed) chain': b(['*nat\n:KUBE-SEP-B - [0:0]\n-X KUBE-SEP-B\nCOMMIT\n', true]),
  '-X of a referenced chain': b(['*nat\n:KUBE-SVC-A - [0:0]\n-X KUBE-SVC-A\nCOMMIT\n', true]),
  '-X after rewriting the referrer': b([
    '*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n-A KUBE-SERVICES -j RETURN\n-X KUBE-SVC-A\nCOMMIT\n',
    true,
  ]),
  '-X of a missing or built-in chain': b(['*nat\n-X NOPE\nCOMMIT\n', true], ['*nat\n-X PREROUTING\nCOMMIT\n', true]),
  'failure keeps earlier tables': b([
    '*filter\n:KUBE-C - [0:0]\n-A KUBE-C -j ACCEPT\nCOMMIT\n*nat\n:KUBE-N2 - [0:0]\n-A KUBE-N2 -j NOPE\nCOMMIT\n',
    true,
  ]),
  'missing final COMMIT keeps earlier tables': b(['*filter\n:KUBE-D - [0:0]\nCOMMIT\n*nat\n:KUBE-N3 - [0:0]\n', true]),
  '-I -D -R -P': b(
    [
      '*filter\n-D KUBE-FORWARD -s 2.2.2.2/32 -j ACCEPT\n-I KUBE-FORWARD 3 -j DROP\n-I KUBE-FORWARD -j LOG\n-R KUBE-FORWARD 2 -j RETURN\n-D KUBE-FORWARD 4\n-P INPUT DROP\nCOMMIT\n',
      true,
    ],
    ['*filter\n-I KUBE-FORWARD 9 -j DROP\nCOMMIT\n', true],
    ['*filter\n-D KUBE-FORWARD -s 9.9.9.9 -j ACCEPT\nCOMMIT\n', true],
  ),
  'targets in the wrong table': b(
    ['*filter\n:KUBE-Q - [0:0]\n-A KUBE-Q -p tcp -j DNAT --to-destination 1.1.1.1\nCOMMIT\n', true],
    ['*nat\n:KUBE-Q - [0:0]\n-A KUBE-Q -j REJECT\nCOMMIT\n', true],
    ['*nat\n:KUBE-Q - [0:0]\n-A KUBE-Q -j DROP\nCOMMIT\n', true],
  ),
  'policy on a user chain': b(['*filter\n:KUBE-Q ACCEPT [0:0]\nCOMMIT\n', true]),
  'unknown match, unknown option, long name': b(
    ['*filter\n:KUBE-Q - [0:0]\n-A KUBE-Q -m foo -j ACCEPT\nCOMMIT\n', true],
    ['*filter\n:KUBE-Q - [0:0]\n-A KUBE-Q -m tcp -p tcp --dprot 80 -j ACCEPT\nCOMMIT\n', true],
    ['*filter\n:ABCDEFGHIJKLMNOPQRSTUVWXYZ012 - [0:0]\nCOMMIT\n', true],
  ),
  'flush and delete everything': b(['*filter\n-F\n-X\nCOMMIT\n', true], ['*nat\n-X\nCOMMIT\n', true]),
  'kube-proxy rules, then a partial sync deleting an endpoint chain': [
    [KUBE_PROXY_RULES, true],
    [
      '*nat\n:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n:KUBE-SEP-ICDUIKC33SFI6ZPR - [0:0]\n-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ\n-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j KUBE-SEP-LXVODXWDISEETFEF\n-X KUBE-SEP-ICDUIKC33SFI6ZPR\nCOMMIT\n',
      true,
    ],
  ],
};

interface Outcome {
  readonly ok: boolean;
  readonly line: number | null;
}

async function run(ipt: Iptables, steps: Step[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const [text, noflush] of steps) {
    const err = await ipt.restore(text, { noflush, counters: false }).then(
      () => null,
      (e: unknown) => e,
    );
    if (err !== null && !(err instanceof RestoreError)) throw err;
    out.push({ ok: err === null, line: err?.line ?? null });
  }
  return out;
}

/** Tables as {chain: [policy, ...normalised rules]}. */
async function state(ipt: Iptables): Promise<unknown> {
  const rs = parseSave(await ipt.save(['filter', 'nat']), 'IPv4');
  return Object.fromEntries(
    rs.tables.map((t) => [t.name, Object.fromEntries(t.chains.map((c) => [c.name, [c.policy, ...c.rules.map((r) => normalizeRuleSpec(r))]]))]),
  );
}

describe.each(['nft', 'legacy'] as IptablesBackend[])('FakeIptables agrees with iptables-%s-restore', (backend) => {
  let n = 0;
  it.each(Object.entries(SCENARIOS))('%s', async (_name, steps) => {
    const ns = `${PREFIX}-${backend}-${n++}`;
    await net.addNamespace(ns);
    try {
      const real = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }) });
      const fake = new FakeIptables({ backend });
      const [realOutcome, fakeOutcome] = [await run(real, steps), await run(fake, steps)];
      // iptables-nft names the COMMIT line for some rule errors, legacy for others: compare lines only where both name a rule.
      const lines = steps.map(([text], i) =>
        realOutcome[i]!.line !== null && text.split('\n')[realOutcome[i]!.line! - 1] === 'COMMIT' ? null : realOutcome[i]!.line,
      );
      expect(fakeOutcome.map((o) => o.ok)).toEqual(realOutcome.map((o) => o.ok));
      fakeOutcome.forEach((o, i) => {
        if (lines[i] !== null) expect(o.line).toBe(lines[i]);
      });
      expect(await state(fake)).toEqual(await state(real));
    } finally {
      await net.deleteNamespace(ns);
    }
  });
});

/**
 * What the traffic counters rely on (proxier/traffic-totals.ts): a restore resets the counters of the chains it
 * declares, flushes or zeroes, with or without --counters, and leaves every other rule's alone. Counters are set
 * through `[packets:bytes]` lines with --counters, so no traffic is needed.
 */
describe.each(['nft', 'legacy'] as IptablesBackend[])('FakeIptables counters agree with iptables-%s', (backend) => {
  const COUNTED = { noflush: true, counters: true };
  const steps: [string, { noflush: boolean; counters: boolean }][] = [
    [
      '*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n:KUBE-SEP-C - [0:0]\n[7:420] -A KUBE-SVC-A -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-A\n[5:300] -A KUBE-SVC-A -j KUBE-SEP-B\n[1:60] -A KUBE-SEP-A -s 10.0.0.1/32 -j MARK --set-xmark 0x4000/0x4000\n[7:420] -A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80\n[5:300] -A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.0.0.2:80\n[3:180] -A KUBE-SEP-C -p tcp -m tcp -j DNAT --to-destination 10.0.0.3:80\nCOMMIT\n',
      COUNTED,
    ],
    // A partial sync's restore: the service chain and one endpoint chain declared again, one endpoint chain zeroed.
    [
      '*nat\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-B - [0:0]\n-A KUBE-SVC-A -j KUBE-SEP-B\n-A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.0.0.2:80\n-Z KUBE-SEP-C\nCOMMIT\n',
      COUNTED,
    ],
    ['*nat\n:KUBE-SEP-A - [0:0]\n-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n', { noflush: true, counters: false }],
  ];
  const counters = async (ipt: Iptables): Promise<string[]> =>
    (await ipt.save(['nat'], { counters: true }))
      .split('\n')
      .filter((l) => l.startsWith('['))
      .map((l) => l.replace(/ -A (\S+) .*/, ' $1'));

  it('a declared, flushed or zeroed chain restarts from zero; the others keep their counters', async () => {
    const ns = `${PREFIX}-${backend}-ctr`;
    await net.addNamespace(ns);
    try {
      const real = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: ns }) });
      const fake = new FakeIptables({ backend });
      const seen: [string[], string[]][] = [];
      for (const [text, opts] of steps) {
        await real.restore(text, opts);
        await fake.restore(text, opts);
        seen.push([await counters(real), await counters(fake)]);
      }
      for (const [r, f] of seen) expect(f).toEqual(r);
      expect(seen[1]![0]).toEqual(['[1:60] KUBE-SEP-A', '[7:420] KUBE-SEP-A', '[0:0] KUBE-SEP-B', '[0:0] KUBE-SEP-C', '[0:0] KUBE-SVC-A']);
      expect(seen[2]![0]).toEqual(['[0:0] KUBE-SEP-A', '[0:0] KUBE-SEP-B', '[0:0] KUBE-SEP-C', '[0:0] KUBE-SVC-A']);
    } finally {
      await net.deleteNamespace(ns);
    }
  });
});
