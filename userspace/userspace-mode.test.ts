/**
 * UserspaceMode over the in-memory FakeIptables and a recording listener
 * opener (no sockets): what each sync opens and closes, what the balancer
 * hands out, which portal rules reach the "kernel" and when, and the UDP
 * conntrack cleanup of listeners that close.
 */
import { describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { getChain } from '../iptables/ruleset.ts';
import type { ConntrackFilter } from '../proxier/conntrack-plan.ts';
import type { ServicePortState } from '../proxier/types.ts';
import { silentLogger } from '../proxier/log.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import type { ListenerSpec } from './listeners.ts';
import { removeKubeProxyRules } from '../iptables/cleanup.ts';
import { ManualClock } from '../proxier/clock.ts';
import { hostIPOf, listenerRoles } from './listener-roles.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import { UserspaceMode, type UserspaceModeDeps } from './userspace-mode.ts';

const NOT_PERIODIC = { periodic: false, previous: null };
const PERIODIC = { periodic: true, previous: null };

function setup(
  opts: {
    portRange?: string;
    fake?: FakeIptables;
    onOpen?: (id: string, port: number) => void;
    onClose?: (id: string, port: number) => void;
    fallbackHostIP?: UserspaceModeDeps['fallbackHostIP'];
  } = {},
) {
  const fake = opts.fake ?? new FakeIptables({ family: 'IPv4' });
  const balancer = new RoundRobinBalancer({ now: () => 0, random: () => 0 });
  const open = new Map<string, number>();
  const closed: string[] = [];
  const conntrack: ConntrackFilter[] = [];
  let nextPort = 40_000;
  const mode = new UserspaceMode(
    { iptables: new Map([['IPv4', fake]]), bindAddress: '0.0.0.0', portRange: opts.portRange ?? '', udpIdleTimeoutMs: 250_000 },
    {
      clock: new ManualClock(),
      logger: silentLogger(),
      balancer,
      opener: async (spec: ListenerSpec, port: number) => {
        const p = port || nextPort++;
        opts.onOpen?.(spec.id, p);
        open.set(spec.id, p);
        return { port: p, close: async () => void (opts.onClose?.(spec.id, p), open.delete(spec.id), closed.push(spec.id)) };
      },
      fallbackHostIP: opts.fallbackHostIP ?? (() => '10.9.9.9'),
      conntrack: { deleteEntries: async (f) => (conntrack.push(...f), { deleted: f.length, errors: [] }) },
    },
  );
  const rules = (chain: string) => getChain(fake.snapshot(), 'nat', chain)?.rules ?? [];
  return { fake, balancer, open, closed, conntrack, mode, rules };
}

const web = (over: Parameters<typeof servicePort>[0] = {}, ips = ['10.0.0.5', '10.0.0.6']): ServicePortState =>
  portState(
    servicePort({ key: 'ns1/web:http', namespace: 'ns1', name: 'web', portName: 'http', clusterIP: '172.30.0.10', port: 80, ...over }),
    ips.map((ip) => endpoint(ip, { port: 8080 })),
  );

describe('UserspaceMode: listeners and portals', () => {
  it('opens a listener per service port, points the portal rules at it and the balancer at the endpoints', async () => {
    const t = setup();
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    expect([...t.open]).toEqual([['ns1/web:http/TCP/80', 40_000]]);
    expect(t.rules('KUBE-PORTALS-CONTAINER').join('\n')).toMatch(/-d 172\.30\.0\.10\/32 .*-j REDIRECT --to-ports 40000/);
    expect(t.rules('KUBE-PORTALS-HOST').join('\n')).toMatch(/-j DNAT --to-destination 192\.168\.0\.2:40000/);
    const picks = [0, 1, 2, 3].map(() => t.balancer.next('ns1/web:http/TCP/80', '10.1.1.1'));
    expect(new Set(picks.map((p) => ('endpoint' in p ? p.endpoint : p.error)))).toEqual(new Set(['10.0.0.5:8080', '10.0.0.6:8080']));
    expect(getChain(t.fake.snapshot(), 'nat', 'PREROUTING')!.rules.some((r) => r.includes('-j KUBE-PORTALS-CONTAINER'))).toBe(true);
  });

  it('an endpoint change updates the balancer without touching iptables; an unchanged sync restores nothing', async () => {
    const t = setup();
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    const restores = t.fake.restores.length;
    await t.mode.sync(snapshotOf([web({}, ['10.0.0.7'])]), NOT_PERIODIC);
    expect(t.fake.restores.length).toBe(restores);
    expect(t.balancer.next('ns1/web:http/TCP/80', '10.1.1.1')).toEqual({ endpoint: '10.0.0.7:8080' });
    expect(t.closed).toEqual([]);
  });

  it('a periodic sync rewrites the portals and repairs a deleted jump rule', async () => {
    const t = setup();
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    await t.fake.restore(
      '*nat\n-D PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER\nCOMMIT\n',
      { noflush: true, counters: false },
    );
    expect(getChain(t.fake.snapshot(), 'nat', 'PREROUTING')!.rules.some((r) => r.includes('KUBE-PORTALS-CONTAINER'))).toBe(false);
    await t.mode.sync(snapshotOf([web()]), PERIODIC);
    expect(getChain(t.fake.snapshot(), 'nat', 'PREROUTING')!.rules.some((r) => r.includes('KUBE-PORTALS-CONTAINER'))).toBe(true);
  });

  it('a changed service port moves to a new listener; a removed service closes it and its rules', async () => {
    const t = setup();
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    await t.mode.sync(snapshotOf([web({ port: 81 })]), NOT_PERIODIC);
    expect(t.closed).toEqual(['ns1/web:http/TCP/80']);
    expect([...t.open.keys()]).toEqual(['ns1/web:http/TCP/81']);
    expect(t.rules('KUBE-PORTALS-CONTAINER').join('\n')).toMatch(/--dport 81 .*REDIRECT --to-ports 40001/);
    expect(t.balancer.has('ns1/web:http/TCP/80')).toBe(false);
    await t.mode.sync(snapshotOf([]), NOT_PERIODIC);
    expect(t.open.size).toBe(0);
    expect(t.rules('KUBE-PORTALS-CONTAINER')).toEqual([]);
    expect(t.rules('KUBE-PORTALS-HOST')).toEqual([]);
  });

  it('SCTP gets no listener; a full port range is an error for that service only', async () => {
    const t = setup({ portRange: '41000-41000' });
    const sctp = web({ key: 'ns1/sctp:s', name: 'sctp', protocol: 'SCTP', clusterIP: '172.30.0.12' });
    const other = web({ key: 'ns1/other:http', name: 'other', clusterIP: '172.30.0.11' });
    const report = await t.mode.sync(snapshotOf([web(), other, sctp]), NOT_PERIODIC);
    expect(t.open.size).toBe(1);
    expect(report.failures).toEqual([
      { stage: 'listener', service: 'ns1/other:http', message: expect.stringMatching(/no free port left in --proxy-port-range 41000-41000/) },
    ]);
    expect(t.rules('KUBE-PORTALS-CONTAINER').length).toBe(1);
  });

  it('a failed restore rejects and the next sync writes everything again', async () => {
    const t = setup();
    t.fake.failNext();
    await expect(t.mode.sync(snapshotOf([web()]), NOT_PERIODIC)).rejects.toThrow(/injected failure/);
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    expect(t.rules('KUBE-PORTALS-CONTAINER').length).toBe(1);
  });

  it('deletes the UDP conntrack entries of a listener that closed (service IPs and node port)', async () => {
    const t = setup();
    const dns = web({ key: 'ns1/dns:dns', name: 'dns', protocol: 'UDP', port: 53, clusterIP: '172.30.0.53', externalIPs: ['203.0.113.53'] });
    const first = snapshotOf([dns, web()]);
    await t.mode.sync(first, NOT_PERIODIC);
    expect(t.conntrack).toEqual([]);
    const report = await t.mode.sync(snapshotOf([web()]), { periodic: false, previous: first });
    expect(t.conntrack.map((f) => `${f.origDst}:${f.origDstPort}`).sort()).toEqual(['172.30.0.53:53', '203.0.113.53:53']);
    expect(report.conntrackDeleted).toBe(2);
  });

  it("after a restart, deletes the UDP conntrack entries the previous process's portals sent to its proxy ports, once the new portals are in place", async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const dns = web({
      key: 'ns1/dns:dns',
      name: 'dns',
      protocol: 'UDP',
      port: 53,
      clusterIP: '172.30.0.53',
      externalIPs: ['203.0.113.53'],
      nodePort: 30053,
    });
    // The previous process (40000 for dns, 40001 for web), then killed: rules and conntrack entries stay.
    await setup({ fake }).mode.sync(snapshotOf([dns, web()]), NOT_PERIODIC);
    const t = setup({ fake });
    let portalsAtDelete = '';
    let next = 40_000;
    const mode = new UserspaceMode(
      { iptables: new Map([['IPv4', fake]]), bindAddress: '0.0.0.0', portRange: '', udpIdleTimeoutMs: 250 },
      {
        clock: new ManualClock(),
        logger: silentLogger(),
        opener: async (_spec: ListenerSpec, port: number) => ({ port: port || next++, close: async () => undefined }),
        portHolder: { reconcile: async () => new Map(), has: () => true, closeAll: async () => undefined },
        fallbackHostIP: () => '10.9.9.9',
        conntrack: {
          deleteEntries: async (f) => {
            portalsAtDelete = t.rules('KUBE-PORTALS-CONTAINER').join('\n');
            t.conntrack.push(...f);
            return { deleted: f.length, errors: [] };
          },
        },
      },
    );
    // dns was deleted while no kube-proxy ran.
    await mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    // Not on a port the old portals pointed at.
    expect(t.rules('KUBE-PORTALS-CONTAINER').join('\n')).toMatch(/ns1\/web:http.* --to-ports 40002$/);
    expect(t.conntrack.map((f) => `${f.origDst ?? '*'}:${f.origDstPort} <- :${f.replySrcPort}`).sort()).toEqual([
      '*:30053 <- :40000',
      '172.30.0.53:53 <- :40000',
      '203.0.113.53:53 <- :40000',
    ]);
    expect(portalsAtDelete).not.toMatch(/dns/);
    // Only at the first sync.
    await mode.sync(snapshotOf([web()]), PERIODIC);
    expect(t.conntrack.length).toBe(3);
  });

  it('the userspace cleanup removes its chains and their jumps', async () => {
    const t = setup();
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    await removeKubeProxyRules(t.fake, { owners: ['userspace'] });
    const save = await t.fake.save(['nat', 'filter']);
    expect(save).not.toMatch(/KUBE-PORTALS|KUBE-NODEPORT-(HOST|CONTAINER|NON-LOCAL)/);
  });
});

/**
 * Upstream never lets a portal rule point at a proxy port another service's
 * listener may hold: cleanupPortalAndProxy closes the portal before it stops
 * the proxy and releases its port, and NewCustomProxier flushes the portal
 * chains (iptablesFlush) before any listener opens, since a previous
 * process's proxy ports are meaningless. Here: when a listener opens on a
 * port, the nat rules in the kernel at that moment must not send any other
 * service's traffic to that port (that traffic would reach the wrong
 * service's endpoints, over connections that stay open).
 */
describe('UserspaceMode: a proxy port is never reachable through another service portal (upstream cleanupPortalAndProxy, iptablesFlush)', () => {
  const other = web({ key: 'ns2/db:sql', namespace: 'ns2', name: 'db', portName: 'sql', clusterIP: '172.30.0.20', port: 5432 });
  /** The services whose portal rules in `fake` point at `port` right now. */
  const portalsTo = (fake: FakeIptables, port: number): string[] =>
    ['KUBE-PORTALS-CONTAINER', 'KUBE-PORTALS-HOST', 'KUBE-NODEPORT-CONTAINER', 'KUBE-NODEPORT-HOST']
      .flatMap((chain) => getChain(fake.snapshot(), 'nat', chain)?.rules ?? [])
      .filter((r) => new RegExp(`(--to-ports |:)${port}$`).test(r))
      .map((r) => /--comment "?([^" ]+)/.exec(r)![1]!);
  /** Records, per listener opened, which services' portals already pointed at its port. */
  const watch = (fake: () => FakeIptables) => {
    const seen: { id: string; port: number; portals: string[] }[] = [];
    return { seen, onOpen: (id: string, port: number) => seen.push({ id, port, portals: portalsTo(fake(), port) }) };
  };

  it("a service replaced by another in one sync: the new listener opens only once the old service's portals are gone", async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const w = watch(() => fake);
    const t = setup({ portRange: '41000-41000', fake, onOpen: w.onOpen });
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    const report = await t.mode.sync(snapshotOf([other]), NOT_PERIODIC);
    expect(w.seen).toEqual([
      { id: 'ns1/web:http/TCP/80', port: 41000, portals: [] },
      { id: 'ns2/db:sql/TCP/5432', port: 41000, portals: [] },
    ]);
    // Served in the same sync, on the port the old service gave back.
    expect(report.failures).toEqual([]);
    expect(portalsTo(fake, 41000)).toEqual(['ns2/db:sql', 'ns2/db:sql']);
  });

  // UDP has no teardown: a client of the deleted service that keeps sending (statsd, syslog) keeps its conntrack entry
  // REDIRECTed to the old proxy port. That entry is a portal too: a listener taken over by another service must not
  // open on the port before it is deleted, or that client's datagrams reach the other service's endpoints; and a
  // refused restore after the reopening must not lose its deletion (the closed listener is not closed again later).
  for (const refused of [false, true])
    it(`a UDP service replaced by another on the same proxy port: its conntrack entries are deleted before the new listener opens${refused ? ', even when the restore after it is refused' : ''}`, async () => {
      const fake = new FakeIptables({ family: 'IPv4' });
      const deletedAtOpen: string[][] = [];
      const t = setup({
        portRange: '41000-41000',
        fake,
        onOpen: () => {
          deletedAtOpen.push(t.conntrack.map((f) => `${f.origDst ?? '*'}:${f.origDstPort}`));
          if (refused && deletedAtOpen.length === 2) fake.failNext('iptables-restore: line 7 failed');
        },
      });
      const dns = web({ key: 'ns1/dns:dns', name: 'dns', protocol: 'UDP', port: 53, clusterIP: '172.30.0.53' });
      const sql = web({ key: 'ns2/db:sql', namespace: 'ns2', name: 'db', portName: 'sql', protocol: 'UDP', clusterIP: '172.30.0.20', port: 5432 });
      const first = snapshotOf([dns]);
      await t.mode.sync(first, NOT_PERIODIC);
      const second = t.mode.sync(snapshotOf([sql]), { periodic: false, previous: first });
      if (refused) await expect(second).rejects.toThrow(/line 7 failed/);
      else expect((await second).failures).toEqual([]);
      expect(deletedAtOpen).toEqual([[], ['172.30.0.53:53']]);
      expect(t.balancer.has('ns1/dns:dns/UDP/53')).toBe(false);
    });

  it('a moved service port keeps its old listener until the portals point at the new one (no refused connections in between)', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const closing: { id: string; portals: string[] }[] = [];
    const t = setup({ fake, onClose: (id, port) => closing.push({ id, portals: portalsTo(fake, port) }) });
    await t.mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    const restores = fake.restores.length;
    await t.mode.sync(snapshotOf([web({ port: 81 })]), NOT_PERIODIC);
    expect(closing).toEqual([{ id: 'ns1/web:http/TCP/80', portals: [] }]);
    expect(portalsTo(fake, 40_001)).toEqual(['ns1/web:http', 'ns1/web:http']);
    expect(fake.restores.length).toBe(restores + 1);
  });

  it('after a restart, a listener never opens on a port the previous process left portal rules pointing at', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    // The previous process (killed -9: no cleanup) served ns1/web on 41000.
    await setup({ portRange: '41000-41000', fake }).mode.sync(snapshotOf([web()]), NOT_PERIODIC);
    expect(portalsTo(fake, 41000)).toEqual(['ns1/web:http', 'ns1/web:http']);
    // The new process: ns1/web is gone meanwhile, ns2/db is new.
    const w = watch(() => fake);
    const t = setup({ portRange: '41000-41000', fake, onOpen: w.onOpen });
    await t.mode.sync(snapshotOf([other]), NOT_PERIODIC);
    expect(w.seen).toEqual([{ id: 'ns2/db:sql/TCP/5432', port: 41000, portals: [] }]);
    expect(portalsTo(fake, 41000)).toEqual(['ns2/db:sql', 'ns2/db:sql']);
  });
});

describe('UserspaceMode: inspect (what /debug/* shows)', () => {
  it('answers its listeners per service port, the portal rules applied, and the refused input; no traffic counters', async () => {
    const t = setup();
    const s = web();
    expect(t.mode.inspect.objectsOf('IPv4', s)).toBeNull();
    await t.mode.sync(snapshotOf([s]), NOT_PERIODIC);
    expect(t.mode.inspect.objectsOf('IPv4', s)).toEqual({ service: ['listener 0.0.0.0:40000/TCP'], endpoints: new Map() });
    const [r] = t.mode.inspect.rules();
    expect(r).toMatchObject({ family: 'IPv4', syntax: 'iptables-restore', refused: null, applied: { full: true } });
    expect(r!.applied!.text()).toMatch(/-A KUBE-PORTALS-CONTAINER .*--to-ports 40000/);
    expect(r!.applied!.text()).toContain('-I PREROUTING 1 ');
    t.fake.failNext('resource busy');
    await expect(t.mode.sync(snapshotOf([s]), PERIODIC)).rejects.toThrow('resource busy');
    const after = t.mode.inspect.rules()[0]!;
    expect(after.refused).toMatchObject({ full: true, error: expect.stringContaining('resource busy') });
    expect(after.refused!.input).toContain('KUBE-PORTALS-CONTAINER');
    expect(t.mode.inspect.traffic()).toBeNull();
  });
});

describe('listener roles and host IP', () => {
  it('a service whose external policy selects other endpoints gets a second, external listener', () => {
    const s = web({ nodePort: 30080, externalPolicyLocal: true });
    const state: ServicePortState = { ...s, selection: { ...s.selection, local: [s.endpoints[0]!] } };
    const roles = listenerRoles(state);
    expect(roles.map((r) => r.spec.id)).toEqual(['ns1/web:http/TCP/80', 'ns1/web:http/TCP/80#external']);
    expect(roles[1]!.endpoints.map((e) => e.ip)).toEqual(['10.0.0.5']);
    expect(listenerRoles(web()).length).toBe(1);
  });

  it('the host IP is the node IP of the family (primary or secondary), else null', () => {
    expect(hostIPOf(snapshotOf([]))).toBe('192.168.0.2');
    expect(hostIPOf(snapshotOf([], { family: 'IPv6' }))).toBe(null);
  });

  it("the host IP is one this host has: a Node address no interface has gives null (the interface fallback; upstream's hostIP is ChooseHostInterface's)", () => {
    expect(hostIPOf({ ...snapshotOf([]), hostAddresses: ['127.0.0.1', '192.168.0.2'] })).toBe('192.168.0.2');
    expect(hostIPOf({ ...snapshotOf([]), hostAddresses: ['127.0.0.1', '10.0.0.9'] })).toBe(null);
  });

  it("without it, host portals DNAT to ChooseHostInterface's address, asked for the mode's family again on full syncs; to loopback when there is none, to the last one when the interfaces cannot be read", async () => {
    const answers: (string | null | Error)[] = ['192.168.60.1', '192.168.70.1', Error('ip: not found'), null];
    const asked: string[] = [];
    const t = setup({
      fallbackHostIP: async (family) => {
        asked.push(family);
        const a = answers.shift()!;
        if (a instanceof Error) throw a;
        return a;
      },
    });
    const natted = { ...snapshotOf([web()]), hostAddresses: ['127.0.0.1', '10.0.0.9'] };
    const target = () => /--to-destination (\S+):\d+$/.exec(t.rules('KUBE-PORTALS-HOST')[0] ?? '')?.[1];
    await t.mode.sync(natted, NOT_PERIODIC);
    expect(target()).toBe('192.168.60.1');
    await t.mode.sync({ ...natted, services: [web({ port: 81 })] }, NOT_PERIODIC);
    expect(asked).toEqual(['IPv4']);
    await t.mode.sync(natted, PERIODIC);
    expect(target()).toBe('192.168.70.1');
    await t.mode.sync(natted, PERIODIC);
    expect(target()).toBe('192.168.70.1');
    await t.mode.sync(natted, PERIODIC);
    expect(target()).toBe('127.0.0.1');
    // The node IP on an interface: no question asked.
    await t.mode.sync(snapshotOf([web()]), PERIODIC);
    expect([target(), asked.length]).toEqual(['192.168.0.2', 4]);
  });
});

describe('UserspaceMode: family and bind address (upstream: single-stack, the family of --bind-address)', () => {
  const make = (bindAddress: string, families: ('IPv4' | 'IPv6')[]) =>
    new UserspaceMode(
      { iptables: new Map(families.map((f) => [f, new FakeIptables({ family: f })])), bindAddress, portRange: '', udpIdleTimeoutMs: 1000 },
      {
        clock: new ManualClock(),
        logger: silentLogger(),
        opener: async () => ({ port: 1, close: async () => undefined }),
        fallbackHostIP: () => null,
      },
    );

  it('serves IPv4 for 0.0.0.0, IPv6 for an IPv6 bind address or a node with IPv6 iptables only', () => {
    expect(make('0.0.0.0', ['IPv4', 'IPv6']).families).toEqual(['IPv4']);
    expect(make('0.0.0.0', ['IPv6']).families).toEqual(['IPv6']);
    expect(make('fd00::2', ['IPv4', 'IPv6']).families).toEqual(['IPv6']);
  });

  it('refuses a localhost bind address and a family whose iptables does not work, naming the flag', () => {
    expect(() => make('127.0.0.1', ['IPv4'])).toThrow('--bind-address 127.0.0.1: the userspace proxy cannot listen on localhost only');
    expect(() => make('fd00::2', ['IPv4'])).toThrow(
      'userspace mode needs ip6tables (the family of --bind-address fd00::2), which does not work on this node',
    );
  });
});
