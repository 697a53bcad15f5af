/**
 * IptablesMode driven against the in-memory FakeIptables: what each sync
 * writes (inspected through the fake's restore log), what the "kernel" holds
 * afterwards (the fake's state), what it reports, and its canary monitor on
 * the manual clock.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Iptables } from './iptables.ts';
import { RestoreError } from './iptables.ts';
import type { IPFamily, ServicePortState, Snapshot } from '../proxier/types.ts';
import { silentLogger, type Logger } from '../proxier/log.ts';
import { ManualClock, type Clock } from '../proxier/clock.ts';
import { ApplyError, FULL_SYNC_PERIOD_MS, type OutsideChange } from '../proxier/mode.ts';
import { endpoint, nodeInfo, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { endpointChainName, serviceChainNames } from './chain-names.ts';
import { chainOwner } from './chains.ts';
import { removeKubeProxyRules } from './cleanup.ts';
import { diffRulesets } from './diff.ts';
import { FakeIptables } from './fake-iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { parseRestore } from './parse.ts';
import { DEFAULT_RENDER_OPTIONS } from './render.ts';
import { getChain, type Ruleset } from './ruleset.ts';

const isOwnedChain = (name: string): boolean => chainOwner(name) === 'iptables' || chainOwner(name) === 'userspace';
const NOT_PERIODIC = { periodic: false, previous: null };
const PERIODIC = { periodic: true, previous: null };

const sp = (i: number) => servicePort({ key: `ns/svc${i}:p80`, namespace: 'ns', name: `svc${i}`, clusterIP: `172.30.0.${i}` });
const svc = (i: number, ips: string[]): ServicePortState =>
  portState(
    sp(i),
    ips.map((ip) => endpoint(ip)),
  );
const svcChain = (i: number) => serviceChainNames(sp(i)).svc;
const sepChain = (i: number, ip: string) => endpointChainName(sp(i), { ip, port: 80 });

function setup(opts: { batchChains?: number; fake?: FakeIptables; clock?: Clock; logger?: Logger; largeClusterThreshold?: number } = {}) {
  const fake = opts.fake ?? new FakeIptables({ family: 'IPv4' });
  let t = 1_000;
  // Every reading 5 ms later: each sync takes 5 ms.
  const ticking: Clock = { now: () => (t += 5), setTimeout: () => 0, clearTimeout: () => undefined };
  const mode = new IptablesMode(
    {
      iptables: new Map<IPFamily, Iptables>([['IPv4', fake]]),
      render:
        opts.largeClusterThreshold === undefined
          ? DEFAULT_RENDER_OPTIONS
          : { ...DEFAULT_RENDER_OPTIONS, largeClusterThreshold: opts.largeClusterThreshold },
      canaryPeriodMs: 1000,
      ...(opts.batchChains !== undefined ? { batchChains: opts.batchChains } : {}),
    },
    { clock: opts.clock ?? ticking, logger: opts.logger ?? silentLogger() },
  );
  return { fake, mode };
}

/** User chains of a table in the fake, name -> rules. */
function userChains(rs: Ruleset, table: string): Map<string, readonly string[]> {
  const t = rs.tables.find((x) => x.name === table);
  return new Map((t?.chains ?? []).filter((c) => c.policy === null).map((c) => [c.name, c.rules]));
}

const rulesOf = (fake: FakeIptables, table: string, chain: string) => getChain(fake.snapshot(), table, chain)?.rules;

/** Chain names declared (":NAME - [0:0]") in one table section of a restore input. */
function declared(text: string, table: string): string[] {
  return parseRestore(text)
    .tables.filter((t) => t.name === table)
    .flatMap((t) => t.declarations.map((d) => d.chain));
}

/** The "-A" commands of one table section of a restore input. */
function appended(text: string, table: string): string[] {
  return parseRestore(text)
    .tables.filter((t) => t.name === table)
    .flatMap((t) => t.ops.filter((o) => o.op === 'A').map((o) => `-A ${o.chain} ${o.rule}`));
}

/** Desired (last render) vs the fake's state: identical when the kernel holds exactly what was rendered. */
function converged(mode: IptablesMode, fake: FakeIptables): boolean {
  const desired = mode.lastRender('IPv4');
  if (!desired) throw new Error('nothing rendered yet');
  return diffRulesets(desired.ruleset, fake.snapshot()).identical;
}

const S1 = svc(1, ['10.0.0.1']);
const S2 = svc(2, ['10.0.0.2', '10.0.0.3']);
const base = (): Snapshot => snapshotOf([S1, S2]);

describe('IptablesMode: full syncs', () => {
  it('writes every chain and inserts the jump rules from the built-in chains on the first sync', async () => {
    const { fake, mode } = setup();
    const res = await mode.sync(base(), NOT_PERIODIC);
    expect(res).toMatchObject({ family: 'IPv4', full: true, durationMs: 5 });
    expect(fake.restores).toHaveLength(1);
    const call = fake.restores[0]!;
    expect(call.opts).toEqual({ noflush: true, counters: true });
    expect(call.error).toBeNull();

    // Every chain of the rendered ruleset is declared, in both tables.
    const rendered = mode.lastRender('IPv4')!.ruleset;
    for (const table of ['filter', 'nat']) {
      expect(new Set(declared(call.text, table))).toEqual(new Set(userChains(rendered, table).keys()));
    }
    const nat = userChains(fake.snapshot(), 'nat');
    for (const name of [
      'KUBE-SERVICES',
      'KUBE-NODEPORTS',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
      svcChain(1),
      svcChain(2),
      sepChain(1, '10.0.0.1'),
      sepChain(2, '10.0.0.2'),
      sepChain(2, '10.0.0.3'),
    ]) {
      expect(nat.has(name), name).toBe(true);
    }
    expect(nat.get(sepChain(2, '10.0.0.3'))).toContain('-m comment --comment ns/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.0.3:80');

    // The jumps from the built-in chains.
    expect(rulesOf(fake, 'nat', 'PREROUTING')).toEqual(['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES']);
    expect(rulesOf(fake, 'nat', 'OUTPUT')).toEqual(['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES']);
    expect(rulesOf(fake, 'nat', 'POSTROUTING')).toEqual(['-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING']);
    expect(rulesOf(fake, 'filter', 'FORWARD')?.map((r) => /-j (\S+)$/.exec(r)?.[1])).toEqual([
      'KUBE-PROXY-FIREWALL',
      'KUBE-FORWARD',
      'KUBE-SERVICES',
      'KUBE-EXTERNAL-SERVICES',
    ]);
    expect(converged(mode, fake)).toBe(true);
  });

  it('does not insert the jump rules a second time on the next full sync', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const before = fake.snapshot();
    mode.requestFullSync();
    const res = await mode.sync(base(), NOT_PERIODIC);
    expect(res.full).toBe(true);
    expect(fake.restores).toHaveLength(2);
    expect(fake.restores[1]!.text).not.toMatch(/^-I /m);
    for (const [table, chain] of [
      ['nat', 'PREROUTING'],
      ['nat', 'OUTPUT'],
      ['nat', 'POSTROUTING'],
      ['filter', 'INPUT'],
      ['filter', 'FORWARD'],
      ['filter', 'OUTPUT'],
    ] as const) {
      expect(rulesOf(fake, table, chain), `${table} ${chain}`).toEqual(getChain(before, table, chain)?.rules);
    }
    expect(rulesOf(fake, 'nat', 'PREROUTING')).toHaveLength(1);
    expect(fake.snapshot()).toEqual(before);
  });

  it('re-inserts only the jump rule that disappeared from a built-in chain', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    // Someone deletes the PREROUTING jump (and adds an unrelated rule of their own).
    await fake.restore(
      '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-A PREROUTING -p tcp --dport 2222 -j ACCEPT\nCOMMIT\n',
      { noflush: true, counters: false },
    );
    await mode.sync(base(), PERIODIC);
    const inserted = parseRestore(fake.restores.at(-1)!.text).tables.flatMap((t) => t.ops.filter((o) => o.op === 'I'));
    expect(inserted.map((o) => [o.chain, o.position, o.rule])).toEqual([
      ['PREROUTING', 1, '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
    ]);
    expect(rulesOf(fake, 'nat', 'PREROUTING')).toEqual([
      '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-p tcp --dport 2222 -j ACCEPT',
    ]);
  });
});

describe('IptablesMode: partial syncs', () => {
  it('writes only the changed service chain and the new and removed endpoint chains', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const S2b = svc(2, ['10.0.0.2', '10.0.0.4']);
    const res = await mode.sync(snapshotOf([S1, S2b]), NOT_PERIODIC);
    expect(res.full).toBe(false);
    expect(fake.restores).toHaveLength(2);
    const text = fake.restores[1]!.text;
    // Nothing in filter changed, KUBE-SERVICES did not change, svc1 and the surviving endpoint did not change.
    expect(text).not.toContain('*filter');
    expect(new Set(declared(text, 'nat'))).toEqual(new Set([svcChain(2), sepChain(2, '10.0.0.4'), sepChain(2, '10.0.0.3')]));
    expect(text).toContain(`-X ${sepChain(2, '10.0.0.3')}\n`);
    expect(text).not.toMatch(/^-I /m);

    const nat = userChains(fake.snapshot(), 'nat');
    expect(nat.has(sepChain(2, '10.0.0.3'))).toBe(false);
    expect(nat.get(sepChain(2, '10.0.0.4'))).toContain('-m comment --comment ns/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.0.4:80');
    expect(nat.get(svcChain(2))!.some((r) => r.endsWith(`-j ${sepChain(2, '10.0.0.4')}`))).toBe(true);
    expect(nat.get(svcChain(2))!.some((r) => r.includes(sepChain(2, '10.0.0.3')))).toBe(false);
    expect(converged(mode, fake)).toBe(true);
  });

  it('performs no restore at all when nothing changed', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    // Same state objects in a new snapshot (what the proxier hands over when another family changed).
    const res = await mode.sync(base(), NOT_PERIODIC);
    expect(res.full).toBe(false);
    expect(fake.restores).toHaveLength(1);
    // Even with equal but not identical state objects, nothing is written.
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1']), svc(2, ['10.0.0.2', '10.0.0.3'])]), NOT_PERIODIC);
    expect(fake.restores).toHaveLength(1);
  });

  it('removes every chain of a deleted service and its KUBE-SERVICES rule', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const res = await mode.sync(snapshotOf([S1]), NOT_PERIODIC);
    expect(res.full).toBe(false);
    const nat = userChains(fake.snapshot(), 'nat');
    for (const gone of [svcChain(2), sepChain(2, '10.0.0.2'), sepChain(2, '10.0.0.3')]) expect(nat.has(gone), gone).toBe(false);
    expect(nat.get('KUBE-SERVICES')!.some((r) => r.includes('172.30.0.2'))).toBe(false);
    expect(nat.has(svcChain(1))).toBe(true);
    expect(converged(mode, fake)).toBe(true);
  });
});

describe('IptablesMode: what forces a full sync', () => {
  it('a periodic sync reads the tables and writes nothing when nothing changed, inside or out (upstream: partial)', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const saved = vi.spyOn(fake, 'save');
    const res = await mode.sync(base(), PERIODIC);
    expect([res.full, fake.restores.length, saved.mock.calls.length]).toEqual([false, 1, 1]);
    // A sync for a change does not read them.
    await mode.sync(snapshotOf([S1, svc(2, ['10.0.0.2'])]), NOT_PERIODIC);
    expect([fake.restores.length, saved.mock.calls.length]).toEqual([2, 1]);
  });

  it('a full sync once an hour, even when nothing changed (upstream FullSyncPeriod)', async () => {
    let t = 1_000;
    const clock: Clock = { now: () => t, setTimeout: () => 0, clearTimeout: () => undefined };
    const { fake, mode } = setup({ clock });
    await mode.sync(base(), NOT_PERIODIC);
    t += FULL_SYNC_PERIOD_MS - 1;
    expect((await mode.sync(base(), PERIODIC)).full).toBe(false);
    t += 1;
    const res = await mode.sync(base(), PERIODIC);
    expect(res.full).toBe(true);
    expect(fake.restores).toHaveLength(2);
    expect(declared(fake.restores[1]!.text, 'nat')).toContain(sepChain(1, '10.0.0.1'));
    expect(declared(fake.restores[1]!.text, 'filter')).toContain('KUBE-FORWARD');
    // And back to partial (nothing to write) afterwards.
    expect((await mode.sync(base(), PERIODIC)).full).toBe(false);
    expect(fake.restores).toHaveLength(2);
  });

  it('no hourly full sync in large-cluster mode (more endpoints than the threshold, upstream 1000), as upstream since #138571 (v1.37, backported to 1.34-1.36); changes, outside damage and the first sync still sync as before', async () => {
    let t = 1_000;
    const clock: Clock = { now: () => t, setTimeout: () => 0, clearTimeout: () => undefined };
    // base() has 3 endpoints: above a threshold of 2.
    const { fake, mode } = setup({ clock, largeClusterThreshold: 2 });
    expect((await mode.sync(base(), NOT_PERIODIC)).full).toBe(true);
    expect(mode.lastRender('IPv4')!.largeClusterMode).toBe(true);
    t += FULL_SYNC_PERIOD_MS;
    expect((await mode.sync(base(), PERIODIC)).full).toBe(false);
    t += 5 * FULL_SYNC_PERIOD_MS;
    expect((await mode.sync(base(), PERIODIC)).full).toBe(false);
    expect(fake.restores).toHaveLength(1);
    // Outside damage is still found by the periodic check and repaired in full.
    await fake.restore(`*nat\n-D ${sepChain(1, '10.0.0.1')} 1\nCOMMIT\n`, { noflush: true, counters: false });
    expect((await mode.sync(base(), PERIODIC)).full).toBe(true);
    // Back under the threshold (one endpoint fewer): the hourly full sync again.
    const small = snapshotOf([S1, svc(2, ['10.0.0.2'])]);
    expect((await mode.sync(small, NOT_PERIODIC)).full).toBe(false);
    t += FULL_SYNC_PERIOD_MS;
    expect((await mode.sync(small, PERIODIC)).full).toBe(true);
  });

  for (const c of [
    {
      what: 'a rule deleted from an endpoint chain',
      outside: () => `*nat\n-D ${sepChain(1, '10.0.0.1')} 1\nCOMMIT\n`,
      says: `nat ${sepChain(1, '10.0.0.1')}: 1 rules, 2 written`,
    },
    {
      what: 'KUBE-SERVICES flushed (iptables -t nat -F KUBE-SERVICES)',
      outside: () => '*nat\n-F KUBE-SERVICES\nCOMMIT\n',
      says: 'nat KUBE-SERVICES: 0 rules, 3 written',
    },
    {
      what: 'a rule added to KUBE-FORWARD',
      outside: () => '*filter\n-A KUBE-FORWARD -s 10.9.9.9 -j ACCEPT\nCOMMIT\n',
      says: 'filter KUBE-FORWARD: 4 rules, 3 written',
    },
    {
      what: 'a service chain deleted',
      outside: () => `*nat\n-F ${svcChain(2)}\n-D KUBE-SERVICES 2\n-X ${svcChain(2)}\nCOMMIT\n`,
      says: `nat ${svcChain(2)}: missing`,
    },
    {
      what: 'a per-service chain the agent does not own',
      outside: () => '*nat\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\nCOMMIT\n',
      says: "nat KUBE-SVC-AAAAAAAAAAAAAAAA: not this agent's",
    },
    {
      what: 'the PREROUTING jump deleted',
      outside: () => '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n',
      says: 'nat PREROUTING: missing -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    },
  ]) {
    it(`a periodic sync finds ${c.what} and rewrites everything, reporting what it found`, async () => {
      const { fake, mode } = setup();
      await mode.sync(base(), NOT_PERIODIC);
      await fake.restore(c.outside(), { noflush: true, counters: false });
      expect(converged(mode, fake)).toBe(false);
      const res = await mode.sync(base(), PERIODIC);
      expect(res.full).toBe(true);
      expect(converged(mode, fake)).toBe(true);
      expect(res.outsideChange).toMatchObject({ family: 'IPv4', kind: 'rules' });
      expect(res.outsideChange!.message).toMatch(/^iptables rules were changed outside kube-proxy-ts \(/);
      expect(res.outsideChange!.fields!['drift']).toContain(c.says);
      // Repaired: the next periodic sync finds nothing.
      const next = await mode.sync(base(), PERIODIC);
      expect([next.full, next.outsideChange]).toEqual([false, undefined]);
    });
  }

  it('a rule replaced in place is left to the hourly full sync (rule text is not compared)', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    await fake.restore(`*nat\n-R ${sepChain(1, '10.0.0.1')} 1 -s 10.0.0.99/32 -j KUBE-MARK-MASQ\nCOMMIT\n`, { noflush: true, counters: false });
    expect((await mode.sync(base(), PERIODIC)).full).toBe(false);
    expect(converged(mode, fake)).toBe(false);
  });

  it('a change of the node addresses is a full sync', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const moved = snapshotOf([S1, S2], { node: nodeInfo({ addresses: ['192.168.0.2', '192.168.0.3'] }) });
    const res = await mode.sync(moved, NOT_PERIODIC);
    expect(res.full).toBe(true);
    expect(fake.restores).toHaveLength(2);
    expect(new Set(declared(fake.restores[1]!.text, 'nat'))).toEqual(new Set(userChains(mode.lastRender('IPv4')!.ruleset, 'nat').keys()));
    expect((await mode.sync(moved, NOT_PERIODIC)).full).toBe(false);
    expect(fake.restores).toHaveLength(2);
  });

  it('a change of the node zone is a full sync', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    const zoned = snapshotOf([S1, S2], { node: nodeInfo({ zone: 'zone-b' }) });
    expect((await mode.sync(zoned, NOT_PERIODIC)).full).toBe(true);
    expect(fake.restores).toHaveLength(2);
    expect((await mode.sync(zoned, NOT_PERIODIC)).full).toBe(false);
  });

  it('requestFullSync() makes the next sync full', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    mode.requestFullSync();
    expect((await mode.sync(base(), NOT_PERIODIC)).full).toBe(true);
    expect(fake.restores).toHaveLength(2);
  });
});

describe('IptablesMode: failures', () => {
  it("a failed partial restore rejects with an ApplyError, logged in upstream's words, and the next full sync repairs everything", async () => {
    const errors: string[] = [];
    const logger = { ...silentLogger(), error: (_f: object, msg: string) => void errors.push(msg) };
    const { fake, mode } = setup({ logger: { ...logger, child: () => logger } as unknown as Logger });
    await mode.sync(base(), NOT_PERIODIC);
    // Someone damages the rules in between.
    await fake.restore(`*nat\n-F ${svcChain(1)}\nCOMMIT\n`, { noflush: true, counters: false });
    const changed = snapshotOf([S1, svc(2, ['10.0.0.2', '10.0.0.9'])]);
    fake.failNext('resource busy');
    const err = await mode.sync(changed, NOT_PERIODIC).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    expect(err).toMatchObject({ family: 'IPv4', full: false });
    expect((err as ApplyError).cause).toBeInstanceOf(RestoreError);
    expect((err as Error).message).toContain('resource busy');
    // proxier.go's message, which troubleshooting guides grep for.
    expect(errors).toEqual(['Failed to execute iptables-restore']);
    // Nothing of the failed restore was applied.
    expect(userChains(fake.snapshot(), 'nat').has(sepChain(2, '10.0.0.9'))).toBe(false);

    const res = await mode.sync(changed, NOT_PERIODIC);
    expect(res.full).toBe(true);
    expect(userChains(fake.snapshot(), 'nat').has(sepChain(2, '10.0.0.9'))).toBe(true);
    expect(userChains(fake.snapshot(), 'nat').has(sepChain(2, '10.0.0.3'))).toBe(false);
    expect(rulesOf(fake, 'nat', svcChain(1))!.length).toBeGreaterThan(0);
    expect(converged(mode, fake)).toBe(true);
  });

  it('a failed full restore rejects as a full one, and the retry is full', async () => {
    const { fake, mode } = setup();
    fake.failNext();
    await expect(mode.sync(base(), NOT_PERIODIC)).rejects.toMatchObject({ name: 'ApplyError', full: true, cause: expect.any(RestoreError) });
    expect(mode.lastRender('IPv4')).toBeNull();
    // Nothing was written, not even the jumps.
    expect(rulesOf(fake, 'nat', 'PREROUTING') ?? []).toEqual([]);

    expect((await mode.sync(base(), NOT_PERIODIC)).full).toBe(true);
    expect(converged(mode, fake)).toBe(true);
    expect(rulesOf(fake, 'nat', 'PREROUTING')).toHaveLength(1);
  });

  it('a restore the kernel refuses (not an injected failure) also makes the next sync full', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    // A foreign rule now jumps to svc2's stale endpoint chain: deleting it must fail.
    await fake.restore(`*nat\n:OTHER - [0:0]\n-A OTHER -j ${sepChain(2, '10.0.0.3')}\nCOMMIT\n`, { noflush: true, counters: false });
    const changed = snapshotOf([S1, svc(2, ['10.0.0.2'])]);
    await expect(mode.sync(changed, NOT_PERIODIC)).rejects.toMatchObject({ full: false, cause: expect.any(RestoreError) });
    // The foreign rule goes; the retry is full (and succeeds).
    await fake.restore('*nat\n-F OTHER\nCOMMIT\n', { noflush: true, counters: false });
    expect((await mode.sync(changed, NOT_PERIODIC)).full).toBe(true);
    expect(converged(mode, fake)).toBe(true);
  });
});

describe('IptablesMode: stale chains', () => {
  it('deletes per-service chains left in the kernel by an earlier run and leaves foreign chains alone', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const STALE_SVC = 'KUBE-SVC-STALESTALESTALE1';
    const STALE_SEP = 'KUBE-SEP-STALESTALESTALE1';
    const STALE_FILTER = 'KUBE-EXT-STALESTALESTALE1';
    await fake.restore(
      [
        '*nat',
        `:${STALE_SVC} - [0:0]`,
        `:${STALE_SEP} - [0:0]`,
        ':MY-NAT - [0:0]',
        `-A ${STALE_SVC} -j ${STALE_SEP}`,
        `-A ${STALE_SEP} -p tcp -j DNAT --to-destination 10.9.9.9:80`,
        '-A MY-NAT -p tcp --dport 8080 -j RETURN',
        '-A PREROUTING -j MY-NAT',
        'COMMIT',
        '*filter',
        `:${STALE_FILTER} - [0:0]`,
        ':MY-FILTER - [0:0]',
        `-A ${STALE_FILTER} -j ACCEPT`,
        '-A MY-FILTER -p tcp --dport 22 -j ACCEPT',
        '-A INPUT -j MY-FILTER',
        'COMMIT',
        '',
      ].join('\n'),
      { noflush: true, counters: false },
    );
    const { mode } = setup({ fake });
    await mode.sync(base(), NOT_PERIODIC);
    const text = fake.restores.at(-1)!.text;
    for (const stale of [STALE_SVC, STALE_SEP, STALE_FILTER]) expect(text).toContain(`-X ${stale}\n`);
    expect(text).not.toContain('MY-NAT');
    expect(text).not.toContain('MY-FILTER');

    const snap = fake.snapshot();
    const nat = userChains(snap, 'nat');
    const filter = userChains(snap, 'filter');
    expect(nat.has(STALE_SVC)).toBe(false);
    expect(nat.has(STALE_SEP)).toBe(false);
    expect(filter.has(STALE_FILTER)).toBe(false);
    expect(nat.get('MY-NAT')).toEqual(['-p tcp --dport 8080 -j RETURN']);
    expect(filter.get('MY-FILTER')).toEqual(['-p tcp --dport 22 -j ACCEPT']);
    expect(getChain(snap, 'nat', 'PREROUTING')?.rules).toEqual(['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES', '-j MY-NAT']);
    expect(getChain(snap, 'filter', 'INPUT')?.rules).toContain('-j MY-FILTER');
    expect(converged(mode, fake)).toBe(true);
  });

  it('finds stale chains again on a periodic full sync (created behind its back)', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    await fake.restore('*nat\n:KUBE-SEP-LEFTOVERLEFTOVER - [0:0]\nCOMMIT\n', { noflush: true, counters: false });
    // A partial sync does not look at the kernel.
    await mode.sync(snapshotOf([S1, svc(2, ['10.0.0.2'])]), NOT_PERIODIC);
    expect(userChains(fake.snapshot(), 'nat').has('KUBE-SEP-LEFTOVERLEFTOVER')).toBe(true);
    await mode.sync(snapshotOf([S1, svc(2, ['10.0.0.2'])]), PERIODIC);
    expect(userChains(fake.snapshot(), 'nat').has('KUBE-SEP-LEFTOVERLEFTOVER')).toBe(false);
  });
});

describe('IptablesMode: batched restores', () => {
  it('splits a large full sync into several restores, each service whole, and converges', async () => {
    const { fake, mode } = setup({ batchChains: 5 });
    // Six services of 1 SVC + 2 SEP chains: 3 chains each, so one service per batch of at most 5.
    const states = [1, 2, 3, 4, 5, 6].map((i) => svc(i, [`10.0.1.${i}`, `10.0.2.${i}`]));
    const res = await mode.sync(snapshotOf(states), NOT_PERIODIC);
    expect(res.full).toBe(true);
    expect(fake.restores.length).toBe(7); // 6 batches of one service + the top-level chains and jumps
    for (const call of fake.restores) {
      expect(call.error).toBeNull();
      expect(call.opts).toEqual({ noflush: true, counters: true });
    }
    // Each service's chains are written in exactly one restore, all together.
    for (let i = 1; i <= 6; i++) {
      const own = [svcChain(i), sepChain(i, `10.0.1.${i}`), sepChain(i, `10.0.2.${i}`)];
      const holders = fake.restores.filter((c) => own.some((n) => declared(c.text, 'nat').includes(n)));
      expect(holders, `svc${i}`).toHaveLength(1);
      expect(declared(holders[0]!.text, 'nat')).toEqual(expect.arrayContaining(own));
    }
    // Nothing refers to a service chain before it exists: KUBE-SERVICES and the jumps come last.
    const last = fake.restores.at(-1)!.text;
    expect(declared(last, 'nat')).toContain('KUBE-SERVICES');
    expect(last).toMatch(/^-I PREROUTING 1 /m);
    expect(converged(mode, fake)).toBe(true);
  });

  it('a small sync stays in one restore', async () => {
    const { fake, mode } = setup({ batchChains: 100 });
    await mode.sync(base(), NOT_PERIODIC);
    expect(fake.restores).toHaveLength(1);
    expect(converged(mode, fake)).toBe(true);
  });
});

describe('IptablesMode: sync reports', () => {
  it('tells onPhase when a sync has rendered and when it has planned, before its first restore, full or partial', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const seen: string[] = [];
    const logged: Iptables = {
      family: 'IPv4',
      save: (t, o) => fake.save(t, o),
      restore: (text, o) => (seen.push('restore'), fake.restore(text, o)),
    };
    const mode = new IptablesMode(
      { iptables: new Map<IPFamily, Iptables>([['IPv4', logged]]), render: DEFAULT_RENDER_OPTIONS, batchChains: 2 },
      { clock: new ManualClock(0), logger: silentLogger(), onPhase: (p) => seen.push(p) },
    );
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1']), svc(2, ['10.0.0.2'])]), PERIODIC);
    // Batched: several restores after the one plan.
    expect(seen[0]).toBe('rendered');
    expect(seen[1]).toBe('planned');
    expect(seen.slice(2).every((s) => s === 'restore') && seen.length > 3).toBe(true);
    seen.length = 0;
    await mode.sync(snapshotOf([svc(1, ['10.0.0.3']), svc(2, ['10.0.0.2'])]), NOT_PERIODIC);
    expect(seen).toEqual(['rendered', 'planned', 'restore']);
  });

  it('reports the rules owned, the rules written, the bytes and the duration of each sync', async () => {
    const { fake, mode } = setup();
    const first = await mode.sync(base(), NOT_PERIODIC);

    const ownedRules = (table: string) => [...userChains(fake.snapshot(), table).values()].reduce((n, r) => n + r.length, 0);
    expect(first.objects).toEqual(
      new Map([
        ['filter', ownedRules('filter')],
        ['nat', ownedRules('nat')],
      ]),
    );
    // A full sync writes every rule it owns.
    expect(first.written.get('nat')).toBe(appended(fake.restores[0]!.text, 'nat').length);
    expect(appended(fake.restores[0]!.text, 'nat').length).toBe(ownedRules('nat'));
    expect(first).toMatchObject({
      full: true,
      durationMs: 5,
      bytes: fake.restores[0]!.text.length,
      noLocalEndpoints: { internal: 0, external: 0 },
      failures: [],
    });

    // A partial sync: one endpoint added to svc2.
    const partial = await mode.sync(snapshotOf([S1, svc(2, ['10.0.0.2', '10.0.0.3', '10.0.0.4'])]), NOT_PERIODIC);
    const partialText = fake.restores[1]!.text;
    expect(partial.written.get('nat')).toBe(appended(partialText, 'nat').length);
    expect(appended(partialText, 'nat').length).toBeLessThan(ownedRules('nat'));
    expect(partial.written.get('filter')).toBe(0);
    expect(partial.objects.get('nat')).toBe(ownedRules('nat'));
    expect(partial).toMatchObject({ full: false, bytes: partialText.length });

    // A sync with nothing to write.
    const idle = await mode.sync(snapshotOf([S1, svc(2, ['10.0.0.2', '10.0.0.3', '10.0.0.4'])]), NOT_PERIODIC);
    expect(idle).toMatchObject({
      full: false,
      bytes: 0,
      written: new Map([
        ['filter', 0],
        ['nat', 0],
      ]),
    });
  });

  it('counts the UDP conntrack entries it deleted, and reports the ones it could not delete without failing', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const entry = { origSrc: '10.9.0.1', origDst: '172.30.0.53', origSrcPort: 40053, origDstPort: 53, replySrc: '10.0.0.2', replySrcPort: 53 };
    const conntrack = { deleteEntries: async () => ({ deleted: 3, errors: ['conntrack v1.4.7: exit 2'] }), listEntries: async () => [entry] };
    const mode = new IptablesMode(
      { iptables: new Map([['IPv4', fake]]), render: DEFAULT_RENDER_OPTIONS },
      { clock: new ManualClock(), logger: silentLogger(), conntrack },
    );
    const dns = (ips: string[]) =>
      portState(
        servicePort({ key: 'ns/dns:53', namespace: 'ns', name: 'dns', clusterIP: '172.30.0.53', port: 53, protocol: 'UDP' }),
        ips.map((ip) => endpoint(ip, { port: 53 })),
      );
    const before = snapshotOf([dns(['10.0.0.1', '10.0.0.2'])]);
    await mode.sync(before, NOT_PERIODIC);
    const r = await mode.sync(snapshotOf([dns(['10.0.0.1'])]), { periodic: false, previous: before });
    expect(r.conntrackDeleted).toBe(3);
    expect(r.failures).toEqual([{ stage: 'conntrack', message: 'conntrack v1.4.7: exit 2' }]);
  });
});

describe('IptablesMode: canaries', () => {
  it('sees the canary missing before ensureCanaries(), present after, missing again after the tables are replaced', async () => {
    const { fake, mode } = setup();
    expect(await mode.canaryMissing()).toBe(true);
    await mode.sync(base(), NOT_PERIODIC);
    expect(await mode.canaryMissing()).toBe(true); // a sync alone does not create them (monitor() does)
    await mode.ensureCanaries();
    expect(await mode.canaryMissing()).toBe(false);
    for (const table of ['mangle', 'nat', 'filter']) expect(userChains(fake.snapshot(), table).has('KUBE-PROXY-CANARY'), table).toBe(true);
    // A later sync leaves them alone.
    await mode.sync(base(), PERIODIC);
    expect(await mode.canaryMissing()).toBe(false);
    // Someone reloads the mangle table wholesale (firewalld reload, iptables-restore without --noflush).
    await fake.restore('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n', { noflush: false, counters: false });
    expect(await mode.canaryMissing()).toBe(true);
    await mode.ensureCanaries();
    expect(await mode.canaryMissing()).toBe(false);
  });

  it('counts a failure to look as "still there"', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const broken: Iptables = {
      family: 'IPv4',
      restore: (text, opts) => fake.restore(text, opts),
      save: () => Promise.reject(new Error('xtables lock held')),
    };
    const mode = new IptablesMode(
      { iptables: new Map([['IPv4', broken]]), render: DEFAULT_RENDER_OPTIONS },
      { clock: new ManualClock(), logger: silentLogger() },
    );
    expect(await mode.canaryMissing()).toBe(false);
  });

  it('monitor() makes the canaries after the first full sync and, every period, resyncs when they are gone', async () => {
    const clock = new ManualClock();
    const fake = new FakeIptables({ family: 'IPv4' });
    const looks: string[] = [];
    const watched: Iptables = {
      family: 'IPv4',
      restore: (t, o) => fake.restore(t, o),
      save: (tables) => (looks.push(String(tables)), fake.save(tables)),
    };
    const mode = new IptablesMode(
      { iptables: new Map([['IPv4', watched]]), render: DEFAULT_RENDER_OPTIONS, canaryPeriodMs: 1000 },
      { clock, logger: silentLogger() },
    );
    let resyncs = 0;
    const found: OutsideChange[] = [];
    const stop = mode.monitor((c) => (resyncs++, found.push(c)));
    expect(fake.restores).toHaveLength(0); // nothing synced yet: no canary
    await mode.sync(base(), NOT_PERIODIC);
    await vi.waitFor(async () => expect(await mode.canaryMissing()).toBe(false));
    clock.advance(1000);
    await vi.waitFor(() => expect(looks).toContain('mangle'));
    await vi.waitFor(() => expect(clock.pending()).toBe(1)); // the next check is scheduled once this one is done
    expect(resyncs).toBe(0);
    // An outside flush of the mangle table: the next check recreates the canary and asks for a full resync.
    await fake.restore('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n', { noflush: false, counters: false });
    clock.advance(1000);
    await vi.waitFor(() => expect(resyncs).toBe(1));
    expect(found).toEqual([{ family: 'IPv4', kind: 'flushed', message: expect.stringMatching(/^canary chain KUBE-PROXY-CANARY is gone/) }]);
    expect(await mode.canaryMissing()).toBe(false);
    stop();
    await fake.restore('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n', { noflush: false, counters: false });
    clock.advance(5000);
    expect(clock.pending()).toBe(0);
    expect(resyncs).toBe(1);
  });
});

describe('IptablesMode canary, both families', () => {
  it('an outside flush of both families (a firewalld reload) is reported for each', async () => {
    const clock = new ManualClock();
    const fakes = new Map((['IPv4', 'IPv6'] as const).map((family) => [family, new FakeIptables({ family })]));
    const mode = new IptablesMode({ iptables: fakes, render: DEFAULT_RENDER_OPTIONS, canaryPeriodMs: 1000 }, { clock, logger: silentLogger() });
    const found: OutsideChange[] = [];
    const stop = mode.monitor((c) => void found.push(c));
    await mode.sync(base(), NOT_PERIODIC);
    await vi.waitFor(async () => expect(await mode.canaryMissing()).toBe(false));
    for (const fake of fakes.values()) await fake.restore('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n', { noflush: false, counters: false });
    clock.advance(1000);
    await vi.waitFor(() => expect(found.map((c) => `${c.family} ${c.kind}`)).toEqual(['IPv4 flushed', 'IPv6 flushed']));
    expect(await mode.canaryMissing()).toBe(false);
    stop();
  });
});

describe('IptablesMode after --cleanup', () => {
  it('cleanup removes every chain it owns and its jumps, leaving a foreign chain and its jump from INPUT; the next sync restores all', async () => {
    const { fake, mode } = setup();
    await mode.sync(base(), NOT_PERIODIC);
    await mode.ensureCanaries();
    await fake.restore('*filter\n:MY-FW - [0:0]\n-A MY-FW -p tcp --dport 22 -j ACCEPT\n-I INPUT 1 -j MY-FW\nCOMMIT\n', {
      noflush: true,
      counters: false,
    });

    await removeKubeProxyRules(fake);
    mode.requestFullSync();
    const snap = fake.snapshot();
    for (const table of snap.tables) {
      const owned = [...userChains(snap, table.name).keys()].filter(isOwnedChain);
      expect(owned, table.name).toEqual([]);
      for (const chain of table.chains) {
        for (const rule of chain.rules) {
          const target = /-j (\S+)/.exec(rule)?.[1];
          expect(target !== undefined && isOwnedChain(target), `${table.name} ${chain.name}: ${rule}`).toBe(false);
        }
      }
    }
    expect(getChain(snap, 'filter', 'MY-FW')?.rules).toEqual(['-p tcp --dport 22 -j ACCEPT']);
    expect(getChain(snap, 'filter', 'INPUT')?.rules).toContain('-j MY-FW');
    expect(getChain(snap, 'nat', 'PREROUTING')?.rules).toEqual([]);
    expect(await mode.canaryMissing()).toBe(true);

    // The next sync is full and puts everything back.
    const res = await mode.sync(base(), NOT_PERIODIC);
    expect(res.full).toBe(true);
    expect(converged(mode, fake)).toBe(true);
    expect(getChain(fake.snapshot(), 'filter', 'INPUT')?.rules).toContain('-j MY-FW');
  });
});
