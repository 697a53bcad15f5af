/**
 * Each case below was first run against iptables-nft-restore and
 * iptables-legacy-restore v1.8.9 in a fresh network namespace; the expected
 * outcome is what both did unless a backend is named.
 */
import { describe, expect, it } from 'vitest';
import { FakeIptables } from './fake-iptables.ts';
import { RestoreError } from './iptables.ts';
import { parseSave } from './parse-save.ts';
import { getChain } from './ruleset.ts';

const NOFLUSH = { noflush: true, counters: false };
const FLUSH = { noflush: false, counters: false };

const BASE = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A KUBE-SERVICES -d 1.1.1.1 -j KUBE-SVC-A
-A KUBE-SVC-A -j KUBE-SEP-A
-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80
-A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80
COMMIT
`;

async function loaded(backend: 'nft' | 'legacy' = 'nft'): Promise<FakeIptables> {
  const ipt = new FakeIptables({ backend });
  await ipt.restore(BASE, NOFLUSH);
  return ipt;
}

async function failure(ipt: FakeIptables, text: string, opts = NOFLUSH): Promise<RestoreError> {
  const err = await ipt.restore(text, opts).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof RestoreError)) throw new Error(`expected a RestoreError, got ${String(err)}`);
  return err;
}

const rules = (ipt: FakeIptables, table: string, chain: string) => getChain(ipt.snapshot(), table, chain)?.rules;
const chains = (ipt: FakeIptables, table: string) =>
  ipt
    .snapshot()
    .tables.find((t) => t.name === table)
    ?.chains.map((c) => c.name);

describe('FakeIptables restore semantics', () => {
  it('has every built-in chain from the start and saves in iptables-save format', async () => {
    const ipt = new FakeIptables();
    expect(await ipt.save(['nat'])).toContain(
      '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
    );
    expect(await ipt.save()).toBe('');
    await ipt.restore(BASE, NOFLUSH);
    const saved = await ipt.save();
    // User chains sorted by name after the built-ins, rules chain by chain, as stored.
    expect(saved.split('\n').filter((l) => /^[:-]/.test(l))).toEqual([
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':KUBE-SEP-A - [0:0]',
      ':KUBE-SEP-B - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-SVC-A - [0:0]',
      '-A PREROUTING -j KUBE-SERVICES',
      '-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80',
      '-A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80',
      '-A KUBE-SERVICES -d 1.1.1.1 -j KUBE-SVC-A',
      '-A KUBE-SVC-A -j KUBE-SEP-A',
    ]);
    expect(parseSave(saved, 'IPv4')).toEqual(ipt.snapshot());
  });

  it('with noflush, a declaration flushes an existing chain and leaves built-in rules alone', async () => {
    const ipt = await loaded();
    await ipt.restore('*nat\n:PREROUTING DROP [0:0]\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n', NOFLUSH);
    expect(rules(ipt, 'nat', 'KUBE-SERVICES')).toEqual(['-j RETURN']);
    expect(rules(ipt, 'nat', 'PREROUTING')).toEqual(['-j KUBE-SERVICES']);
    expect(getChain(ipt.snapshot(), 'nat', 'PREROUTING')?.policy).toBe('DROP');
    expect(rules(ipt, 'nat', 'KUBE-SVC-A')).toEqual(['-j KUBE-SEP-A']);
  });

  it('without noflush, replaces each table mentioned and keeps the others', async () => {
    const ipt = await loaded();
    await ipt.restore('*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n', NOFLUSH);
    await ipt.restore('*nat\n:KUBE-X - [0:0]\n-A PREROUTING -j KUBE-X\nCOMMIT\n', FLUSH);
    expect(chains(ipt, 'nat')).toEqual(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-X']);
    expect(rules(ipt, 'nat', 'PREROUTING')).toEqual(['-j KUBE-X']);
    expect(chains(ipt, 'filter')).toContain('KUBE-FORWARD');
  });

  it('without noflush, nft resets built-in policies and legacy keeps them', async () => {
    for (const [backend, policy] of [
      ['nft', 'ACCEPT'],
      ['legacy', 'DROP'],
    ] as const) {
      const ipt = new FakeIptables({ backend });
      await ipt.restore('*filter\n:INPUT DROP [0:0]\nCOMMIT\n', NOFLUSH);
      await ipt.restore('*filter\n:FORWARD DROP [0:0]\nCOMMIT\n', FLUSH);
      expect(getChain(ipt.snapshot(), 'filter', 'INPUT')?.policy).toBe(policy);
    }
  });

  it('refuses -A to a missing chain and a jump to a missing chain, naming the line', async () => {
    const ipt = await loaded();
    const a = await failure(ipt, '*nat\n:KUBE-C - [0:0]\n-A KUBE-C -j RETURN\n-A NOPE -j ACCEPT\nCOMMIT\n');
    expect(a.line).toBe(4);
    expect(a.message).toMatch(/chain NOPE does not exist in table nat/);
    expect(a.context).toContain('>     4: -A NOPE -j ACCEPT');
    const j = await failure(ipt, '*nat\n:KUBE-C - [0:0]\n-A KUBE-C -j KUBE-NOPE\nCOMMIT\n');
    expect(j.line).toBe(3);
    // Nothing of the failing table applied.
    expect(chains(ipt, 'nat')).not.toContain('KUBE-C');
  });

  it('refuses a jump to a chain declared only later in the input', async () => {
    const err = await failure(new FakeIptables(), '*filter\n:Q - [0:0]\n-A Q -j W\n:W - [0:0]\nCOMMIT\n');
    expect(err.line).toBe(3);
  });

  it('accepts the targets kube-proxy uses, each in its table', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(
      '*nat\n:T - [0:0]\n-A T -j MARK --or-mark 0x4000\n-A T -j MASQUERADE --random-fully\n-A T -p tcp -j DNAT --to-destination 10.0.0.1:80\n-A T -p udp -j REDIRECT --to-ports 53\n-A T -j RETURN\n-A T -m comment --comment "no target"\nCOMMIT\n' +
        '*filter\n:F - [0:0]\n-A F -j REJECT\n-A F -j DROP\n-A F -j ACCEPT\n-A F -j LOG\nCOMMIT\n',
      NOFLUSH,
    );
    expect(rules(ipt, 'nat', 'T')).toHaveLength(6);
    expect((await failure(ipt, '*filter\n:Q - [0:0]\n-A Q -p tcp -j DNAT --to-destination 1.1.1.1\nCOMMIT\n')).message).toMatch(
      /DNAT is not valid in table filter/,
    );
    expect((await failure(ipt, '*nat\n:Q - [0:0]\n-A Q -j REJECT\nCOMMIT\n')).line).toBe(3);
    // "The nat table is not intended for filtering, the use of DROP is therefore inhibited."
    expect((await failure(ipt, '*nat\n:Q - [0:0]\n-A Q -j DROP\nCOMMIT\n')).message).toMatch(/DROP is not valid in table nat/);
  });

  it('refuses unknown matches and options, and malformed rules', async () => {
    const ipt = new FakeIptables();
    expect((await failure(ipt, '*filter\n:Q - [0:0]\n-A Q -m foo -j ACCEPT\nCOMMIT\n')).message).toMatch(/couldn't load match "foo"/);
    expect((await failure(ipt, '*filter\n:Q - [0:0]\n-A Q -m tcp -p tcp --dprot 80 -j ACCEPT\nCOMMIT\n')).message).toMatch(
      /unknown option "--dprot"/,
    );
    expect((await failure(ipt, '*filter\n:Q - [0:0]\n-A Q -p tcp --dport\nCOMMIT\n')).exitCode).toBe(2);
    expect((await failure(ipt, '*filter\n:ABCDEFGHIJKLMNOPQRSTUVWXYZ012 - [0:0]\nCOMMIT\n')).message).toMatch(/too long/);
  });

  it('-X refuses a chain that is non-empty, still referenced, built-in or missing', async () => {
    const ipt = await loaded();
    expect((await failure(ipt, '*nat\n-X KUBE-SEP-B\nCOMMIT\n')).message).toMatch(/still holds 1 rule/);
    expect((await failure(ipt, '*nat\n:KUBE-SVC-A - [0:0]\n-X KUBE-SVC-A\nCOMMIT\n')).message).toMatch(/a rule in KUBE-SERVICES still jumps to it/);
    expect((await failure(ipt, '*nat\n-X PREROUTING\nCOMMIT\n')).line).toBe(2);
    expect((await failure(ipt, '*nat\n-X NOPE\nCOMMIT\n')).line).toBe(2);
    expect((await failure(ipt, '*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-X B\nCOMMIT\n')).line).toBe(5);
    expect(chains(ipt, 'nat')).toContain('KUBE-SEP-B');
  });

  it('-X deletes a chain declared (so flushed) in the same input, and one whose referrer was rewritten', async () => {
    const ipt = await loaded();
    await ipt.restore('*nat\n:KUBE-SEP-B - [0:0]\n-X KUBE-SEP-B\nCOMMIT\n', NOFLUSH);
    await ipt.restore('*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n-A KUBE-SERVICES -j RETURN\n-X KUBE-SVC-A\nCOMMIT\n', NOFLUSH);
    expect(chains(ipt, 'nat')).toEqual(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-SEP-A', 'KUBE-SERVICES']);
  });

  it('keeps earlier tables of a failing input committed and drops the failing one', async () => {
    const ipt = await loaded();
    await failure(ipt, '*filter\n:C - [0:0]\n-A C -j ACCEPT\nCOMMIT\n*nat\n:N2 - [0:0]\n-A N2 -j NOPE\nCOMMIT\n');
    expect(rules(ipt, 'filter', 'C')).toEqual(['-j ACCEPT']);
    expect(chains(ipt, 'nat')).not.toContain('N2');
    // Also for a syntax error in a later table (iptables-restore: "COMMIT expected").
    const err = await failure(ipt, '*filter\n:D - [0:0]\nCOMMIT\n*nat\n:N3 - [0:0]\n');
    expect([err.line, err.exitCode]).toEqual([6, 2]);
    expect(chains(ipt, 'filter')).toContain('D');
    expect(chains(ipt, 'nat')).not.toContain('N3');
  });

  it('handles -I positions, -D by number and by rule, -R, -F, -N, -P', async () => {
    const ipt = new FakeIptables();
    await ipt.restore('*filter\n:A - [0:0]\n-A A -s 1.1.1.1 -j ACCEPT\n-A A -s 2.2.2.2 -j ACCEPT\n-A A -s 3.3.3.3 -j ACCEPT\nCOMMIT\n', NOFLUSH);
    expect((await failure(ipt, '*filter\n-I A 5 -j DROP\nCOMMIT\n')).message).toMatch(/index of insertion 5 too big/);
    expect((await failure(ipt, '*filter\n-N A\nCOMMIT\n')).message).toMatch(/already exists/);
    expect((await failure(ipt, '*filter\n-D A -s 9.9.9.9 -j ACCEPT\nCOMMIT\n')).message).toMatch(/no such rule/);
    // -D matches the rule as the kernel does, whatever its spelling.
    await ipt.restore(
      '*filter\n-D A -s 2.2.2.2/32 -j ACCEPT\n-I A 3 -j DROP\n-I A -j LOG\n-R A 2 -j RETURN\n-D A 4\n-P INPUT DROP\nCOMMIT\n',
      NOFLUSH,
    );
    expect(rules(ipt, 'filter', 'A')).toEqual(['-j LOG', '-j RETURN', '-s 3.3.3.3 -j ACCEPT']);
    expect(getChain(ipt.snapshot(), 'filter', 'INPUT')?.policy).toBe('DROP');
    await ipt.restore('*filter\n-F\n-X\nCOMMIT\n', NOFLUSH);
    expect(chains(ipt, 'filter')).toEqual(['INPUT', 'FORWARD', 'OUTPUT']);
  });

  it('refuses a policy on a user chain with legacy only', async () => {
    await new FakeIptables({ backend: 'nft' }).restore('*filter\n:Q ACCEPT [0:0]\nCOMMIT\n', NOFLUSH);
    expect((await failure(new FakeIptables({ backend: 'legacy' }), '*filter\n:Q ACCEPT [0:0]\nCOMMIT\n')).line).toBe(2);
  });

  it('logs every restore and can be told to fail the next one', async () => {
    const ipt = await loaded();
    ipt.failNext('xtables lock held');
    const err = await failure(ipt, '*nat\n:KUBE-NEW - [0:0]\nCOMMIT\n');
    expect(err.message).toMatch(/xtables lock held/);
    expect(chains(ipt, 'nat')).not.toContain('KUBE-NEW');
    await ipt.restore('*nat\n:KUBE-NEW - [0:0]\nCOMMIT\n', NOFLUSH);
    expect(ipt.restores.map((r) => [r.opts.noflush, r.error === null])).toEqual([
      [true, true],
      [true, false],
      [true, true],
    ]);
  });

  it('lists tables in creation order (nft) or newest first (legacy)', async () => {
    for (const [backend, order] of [
      ['nft', ['filter', 'nat']],
      ['legacy', ['nat', 'filter']],
    ] as const) {
      const ipt = new FakeIptables({ backend });
      await ipt.restore('*filter\nCOMMIT\n*nat\nCOMMIT\n', NOFLUSH);
      expect(ipt.snapshot().tables.map((t) => t.name)).toEqual(order);
    }
  });

  it('counts traffic per rule, saves it with -c, and restarts a chain declared again from zero (as fake-iptables.e2e checks)', async () => {
    const ipt = await loaded();
    ipt.count('nat', 'KUBE-SEP-A', '-j DNAT', 3, 180);
    ipt.count('nat', 'KUBE-SEP-B', '-j DNAT', 2, 120);
    ipt.count('nat', 'KUBE-SEP-A', '-j DNAT', 1, 60);
    const sep = async () => (await ipt.save(['nat'], { counters: true })).split('\n').filter((l) => l.includes('-A KUBE-SEP'));
    expect(await sep()).toEqual([
      '[4:240] -A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80',
      '[2:120] -A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80',
    ]);
    expect(await ipt.save(['nat'])).not.toContain('[4:240]');
    await ipt.restore('*nat\n:KUBE-SEP-B - [0:0]\n-A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n', NOFLUSH);
    expect(await sep()).toEqual([
      '[4:240] -A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80',
      '[0:0] -A KUBE-SEP-B -p tcp -j DNAT --to-destination 10.0.0.2:80',
    ]);
    await ipt.restore('*nat\n[9:540] -A KUBE-SEP-B -p tcp -j ACCEPT\nCOMMIT\n', { noflush: true, counters: true });
    expect(await sep()).toContain('[9:540] -A KUBE-SEP-B -p tcp -j ACCEPT');
    expect(() => ipt.count('nat', 'KUBE-SEP-A', 'MASQUERADE', 1, 1)).toThrow(/no rule containing "MASQUERADE" in nat\/KUBE-SEP-A/);
  });
});
