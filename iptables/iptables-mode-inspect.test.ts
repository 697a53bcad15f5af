/**
 * What IptablesMode shows operators (ModeInspection), driven against the
 * FakeIptables: the rules applied and refused per family, each service
 * port's chains, and the traffic per endpoint read from the KUBE-SEP
 * counters (the fake's count() stands in for traffic), at full syncs and on
 * the slow timer, never on a partial sync.
 */
import { describe, expect, it, vi } from 'vitest';
import { ManualClock, type Clock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import type { IPFamily, ServicePortState } from '../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { endpointChainName, serviceChainNames } from './chain-names.ts';
import { FakeIptables } from './fake-iptables.ts';
import type { Iptables } from './iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { parseRestore } from './parse.ts';
import { DEFAULT_RENDER_OPTIONS } from './render.ts';

const NOT_PERIODIC = { periodic: false, previous: null };
const PERIODIC = { periodic: true, previous: null };

const sp = (i: number) => servicePort({ key: `ns/svc${i}:p80`, namespace: 'ns', name: `svc${i}`, clusterIP: `172.30.0.${i}` });
const svc = (i: number, ips: string[]): ServicePortState =>
  portState(
    sp(i),
    ips.map((ip) => endpoint(ip)),
  );
const sepChain = (i: number, ip: string) => endpointChainName(sp(i), { ip, port: 80 });

function setup(opts: { counting?: boolean; clock?: Clock } = {}) {
  const fake = new FakeIptables({ family: 'IPv4' });
  const saves: string[] = [];
  const watched: Iptables = {
    family: 'IPv4',
    restore: (t, o) => fake.restore(t, o),
    save: (tables, o) => (saves.push(`${String(tables)}${o?.counters ? ' -c' : ''}`), fake.save(tables, o)),
  };
  let t = 1_000;
  const ticking: Clock = { now: () => (t += 5), setTimeout: () => 0, clearTimeout: () => undefined };
  const logger = silentLogger();
  const warn = vi.spyOn(logger, 'warn');
  const mode = new IptablesMode(
    {
      iptables: new Map<IPFamily, Iptables>([['IPv4', watched]]),
      render: DEFAULT_RENDER_OPTIONS,
      ...(opts.counting ? { trafficCounters: { periodMs: 10_000, maxEndpoints: 3 } } : {}),
    },
    { clock: opts.clock ?? ticking, logger },
  );
  return { fake, mode, saves, warn };
}

const traffic = (mode: IptablesMode) => mode.inspect.traffic();

describe('IptablesMode inspect: rules', () => {
  it('records the ruleset of the last successful sync per family, as restore input that parses', async () => {
    const { mode } = setup();
    expect(mode.inspect.rules()).toEqual([{ family: 'IPv4', syntax: 'iptables-restore', applied: null, refused: null }]);
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1'])]), NOT_PERIODIC);
    const [r] = mode.inspect.rules();
    expect(r!.applied).toMatchObject({ full: true });
    const text = r!.applied!.text();
    expect(text).toContain(`:${sepChain(1, '10.0.0.1')} - [0:0]`);
    expect(text).toContain('-A KUBE-SERVICES');
    expect(parseRestore(text).tables.map((t) => t.name)).toEqual(expect.arrayContaining(['filter', 'nat']));

    // A partial sync: the record shows the whole ruleset, not only what the sync wrote.
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1']), svc(2, ['10.0.0.2'])]), NOT_PERIODIC);
    const after = mode.inspect.rules()[0]!;
    expect(after.applied!.full).toBe(false);
    expect(after.applied!.text()).toContain(sepChain(1, '10.0.0.1'));
    expect(after.applied!.text()).toContain(sepChain(2, '10.0.0.2'));
  });

  it('keeps the refused input with the error and the line, and the last applied ruleset beside it (upstream RestoreAll failure path)', async () => {
    const { fake, mode } = setup();
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1'])]), NOT_PERIODIC);
    // A foreign rule jumps to svc1's endpoint chain: the partial sync that deletes it is refused by the kernel.
    await fake.restore(`*nat\n:OTHER - [0:0]\n-A OTHER -j ${sepChain(1, '10.0.0.1')}\nCOMMIT\n`, { noflush: true, counters: false });
    await expect(mode.sync(snapshotOf([svc(1, ['10.0.0.9'])]), NOT_PERIODIC)).rejects.toMatchObject({ name: 'ApplyError' });
    const r = mode.inspect.rules()[0]!;
    expect(r.refused).not.toBeNull();
    expect(r.refused!.full).toBe(false);
    expect(r.refused!.input).toContain(`-X ${sepChain(1, '10.0.0.1')}`);
    expect(r.refused!.error).toMatch(/iptables-restore|line|busy|chain/i);
    expect(r.refused!.line).toBeGreaterThan(0);
    expect(r.refused!.input.split('\n')[r.refused!.line! - 1]).toContain(sepChain(1, '10.0.0.1'));
    // What the kernel still holds is the last applied ruleset.
    expect(r.applied!.text()).toContain(sepChain(1, '10.0.0.1'));
  });
});

describe('IptablesMode inspect: objects of a service port', () => {
  it("names the service port's chains and each endpoint's KUBE-SEP chain from the last render", async () => {
    const { mode } = setup();
    const s = svc(1, ['10.0.0.1', '10.0.0.2']);
    expect(mode.inspect.objectsOf('IPv4', s)).toBeNull();
    await mode.sync(snapshotOf([s]), NOT_PERIODIC);
    const o = mode.inspect.objectsOf('IPv4', s)!;
    expect(o.service).toContain(serviceChainNames(sp(1)).svc);
    expect(o.service.every((c) => !c.startsWith('KUBE-SEP-'))).toBe(true);
    expect([...o.endpoints]).toEqual([
      ['10.0.0.1:80', sepChain(1, '10.0.0.1')],
      ['10.0.0.2:80', sepChain(1, '10.0.0.2')],
    ]);
    expect(mode.inspect.objectsOf('IPv4', svc(7, ['10.0.0.7']))).toBeNull();
  });
});

describe('IptablesMode inspect: traffic per endpoint', () => {
  it('is null without --traffic-counters, and no sync saves with -c', async () => {
    const { mode, saves } = setup();
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1'])]), PERIODIC);
    expect(traffic(mode)).toBeNull();
    expect(saves.some((s) => s.endsWith(' -c'))).toBe(false);
  });

  it('reads the counters at full syncs only, keeps totals across the rewrite, and never on a partial sync', async () => {
    const { fake, mode, saves } = setup({ counting: true });
    const snap = snapshotOf([svc(1, ['10.0.0.1', '10.0.0.2'])]);
    await mode.sync(snap, NOT_PERIODIC);
    expect(saves).toEqual(['filter,nat -c']);
    // That reading came before the first restore: no endpoint chain yet.
    expect(traffic(mode)).toEqual([]);
    fake.count('nat', sepChain(1, '10.0.0.1'), '-j DNAT', 3, 180);
    // Partial syncs read nothing: one that changes nothing, one that adds a service.
    await mode.sync(snap, NOT_PERIODIC);
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1', '10.0.0.2']), svc(3, ['10.0.0.3'])]), NOT_PERIODIC);
    await mode.sync(snap, NOT_PERIODIC);
    expect(saves).toHaveLength(1);
    // The periodic full sync reads them just before its restore rewrites (and so zeroes) every chain.
    await mode.sync(snap, PERIODIC);
    expect(saves).toHaveLength(2);
    expect(traffic(mode)!.map((t) => [t.endpoint, t.packets, t.bytes])).toEqual([
      ['10.0.0.1:80', 3, 180],
      ['10.0.0.2:80', 0, 0],
    ]);
    fake.count('nat', sepChain(1, '10.0.0.1'), '-j DNAT', 1, 60);
    fake.count('nat', sepChain(1, '10.0.0.2'), '-j DNAT', 2, 120);
    await mode.sync(snap, PERIODIC);
    expect(traffic(mode)!.map((t) => [t.endpoint, t.packets, t.bytes])).toEqual([
      ['10.0.0.1:80', 4, 240],
      ['10.0.0.2:80', 2, 120],
    ]);
  });

  it('on the slow timer: reads the nat table with -c, and an endpoint added by a partial sync leaves the others counting on', async () => {
    const clock = new ManualClock(1_000);
    const { fake, mode, saves } = setup({ counting: true, clock });
    const stop = mode.monitor(() => undefined);
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1'])]), NOT_PERIODIC);
    fake.count('nat', sepChain(1, '10.0.0.1'), '-j DNAT', 5, 300);
    clock.advance(10_000);
    await vi.waitFor(() => expect(saves).toContain('nat -c'));
    await vi.waitFor(() => expect(traffic(mode)![0]!.packets).toBe(5));
    // A new endpoint: a partial sync writes its chain and the service chain, not svc1's first KUBE-SEP chain.
    await mode.sync(snapshotOf([svc(1, ['10.0.0.1', '10.0.0.2'])]), NOT_PERIODIC);
    fake.count('nat', sepChain(1, '10.0.0.1'), '-j DNAT', 1, 60);
    fake.count('nat', sepChain(1, '10.0.0.2'), '-j DNAT', 7, 420);
    await vi.waitFor(() => expect(clock.pending()).toBeGreaterThan(0));
    clock.advance(10_000);
    await vi.waitFor(() =>
      expect(traffic(mode)!.map((t) => [t.endpoint, t.packets])).toEqual([
        ['10.0.0.1:80', 6],
        ['10.0.0.2:80', 7],
      ]),
    );
    stop();
  });

  it('caps the exported endpoints with one warning naming the flag (--traffic-counters-max-endpoints)', async () => {
    const { mode, warn } = setup({ counting: true });
    const snap = snapshotOf([svc(1, ['10.0.0.1', '10.0.0.2']), svc(2, ['10.0.0.3', '10.0.0.4'])]);
    await mode.sync(snap, NOT_PERIODIC);
    await mode.sync(snap, PERIODIC);
    expect(traffic(mode)).toHaveLength(3);
    await mode.sync(snap, PERIODIC);
    const capped = warn.mock.calls.filter((c) => String((c as unknown[])[1]).includes('--traffic-counters-max-endpoints=3'));
    expect(capped).toHaveLength(1);
    expect(String((capped[0] as unknown[])[1])).toContain('1 endpoint(s) not exported');
  });
});
