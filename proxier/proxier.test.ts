/**
 * The Proxier on the manual clock, with a recording mode: the start-up gate,
 * the bounded-frequency runner (upstream pkg/proxy/runner: coalescing within
 * the min sync period, periodic resyncs, retries), dirty-service rebuilding
 * (unchanged services keep their state objects), slice ownership, trigger
 * times and the hooks that feed health and metrics.
 */
import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeNode, makeService, makeServiceCIDR } from '../test/builders.ts';
import { ManualClock } from './clock.ts';
import type { ProxyMode, SyncContext, SyncReport } from './mode.ts';
import { Proxier, type ProxierEvent, type ProxierHooks } from './proxier.ts';
import { stateBuilder } from './state-builder.ts';
import { formatProblem, type IPFamily, type ObjectProblem, type Snapshot } from './types.ts';

const MIN = 1000;
const PERIOD = 30_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

class RecordingMode implements ProxyMode {
  readonly name = 'iptables' as const;
  readonly calls: { snapshot: Snapshot; ctx: SyncContext; at: number }[] = [];
  fullRequests = 0;
  failures = 0;
  readonly families: readonly IPFamily[];
  private readonly clock: ManualClock;
  constructor(families: readonly IPFamily[], clock: ManualClock) {
    this.families = families;
    this.clock = clock;
  }
  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    this.calls.push({ snapshot, ctx, at: this.clock.now() });
    if (this.failures > 0) {
      this.failures--;
      throw new Error('restore refused');
    }
    return {
      family: snapshot.family,
      full: false,
      durationMs: 0,
      objects: new Map(),
      written: new Map(),
      bytes: 0,
      noLocalEndpoints: null,
      conntrackDeleted: 0,
      failures: [],
    };
  }
  requestFullSync(): void {
    this.fullRequests++;
  }
  monitor(): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}

function setup(families: IPFamily[] = ['IPv4'], hooks: ProxierHooks = {}, hostAddresses?: () => readonly string[]) {
  const clock = new ManualClock(T0);
  const mode = new RecordingMode(families, clock);
  const proxier = new Proxier({
    mode,
    builder: stateBuilder('node-1', { preferSameTrafficDistribution: true }),
    clock,
    minSyncPeriodMs: MIN,
    syncPeriodMs: PERIOD,
    hooks,
    ...(hostAddresses ? { hostAddresses } : {}),
  });
  proxier.start();
  /** Moves the clock and lets a sync it started finish. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await proxier.idle();
  };
  const event = (kind: ProxierEvent['kind'], key: string, obj: unknown, type: ProxierEvent['type'] = 'add'): void =>
    proxier.onEvent({ type, kind, key, old: null, obj });
  const listAll = (): void => ['Service', 'EndpointSlice', 'Node'].forEach((k) => proxier.onSynced(k as ProxierEvent['kind']));
  return { clock, mode, proxier, advance, event, listAll };
}

const web = makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80 }] });
const db = makeService('ns', 'db', { clusterIP: '172.30.0.20', ports: [{ name: 'p80', port: 80 }] });
const slice = (service: string, ip: string, annotations: Record<string, string> = {}) =>
  makeEndpointSlice('ns', service, `${service}-a`, {
    addresses: [ip],
    metadata: { name: `${service}-a`, namespace: 'ns', labels: { 'kubernetes.io/service-name': service }, annotations },
  });
const endpointsOf = (s: Snapshot, key: string) => s.services.find((x) => x.service.key === key)?.endpoints.map((e) => e.ip);

describe('Proxier start-up gate', () => {
  it('programs nothing before Services, EndpointSlices and the Node have all been listed, then syncs as soon as the min period allows', async () => {
    const t = setup();
    t.event('Service', 'ns/web', web);
    t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.1'));
    t.proxier.onSynced('Service');
    t.proxier.onSynced('EndpointSlice');
    await t.advance(PERIOD + 1);
    // Even the periodic resync waits for the gate.
    expect(t.mode.calls).toEqual([]);
    t.event('Node', 'node-1', makeNode('node-1', { addresses: ['192.168.0.2'] }));
    t.proxier.onSynced('Node');
    // The gated periodic run counts as a run: the min sync period applies from its end.
    await t.advance(MIN - 1);
    expect(t.mode.calls).toEqual([]);
    await t.advance(1);
    expect(t.mode.calls).toHaveLength(1);
    expect(endpointsOf(t.mode.calls[0]!.snapshot, 'ns/web:p80')).toEqual(['10.0.0.1']);
    expect(t.mode.calls[0]!.snapshot.node.addresses).toEqual(['192.168.0.2']);
  });
});

describe('Proxier sync loop (upstream BoundedFrequencyRunner semantics)', () => {
  it('coalesces changes within the min sync period into one sync, and resyncs periodically without changes', async () => {
    const t = setup();
    t.listAll();
    await t.advance(0);
    expect(t.mode.calls).toHaveLength(1);
    t.event('Service', 'ns/web', web);
    t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.1'));
    await t.advance(MIN - 1);
    expect(t.mode.calls).toHaveLength(1);
    await t.advance(1);
    expect(t.mode.calls).toHaveLength(2);
    expect(t.mode.calls[1]!.ctx).toEqual({ periodic: false, previous: t.mode.calls[0]!.snapshot });
    await t.advance(PERIOD);
    expect(t.mode.calls).toHaveLength(3);
    expect(t.mode.calls[2]!.ctx.periodic).toBe(true);
  });

  it('retries a failed sync within the sync period and keeps the last good state as "previous"', async () => {
    const failed: string[] = [];
    const t = setup(['IPv4'], { syncFailed: (f, err) => failed.push(`${f}: ${(err as Error).message}`) });
    t.listAll();
    await t.advance(0);
    t.mode.failures = 1;
    t.event('Service', 'ns/web', web);
    await t.advance(MIN);
    expect(failed).toEqual(['IPv4: restore refused']);
    await t.advance(PERIOD);
    expect(t.mode.calls).toHaveLength(3);
    expect(t.mode.calls[2]!.ctx.previous).toBe(t.mode.calls[0]!.snapshot);
  });

  it('requestFullSync() asks the mode for a full sync and queues one for every family', async () => {
    const queued: IPFamily[] = [];
    const t = setup(['IPv4', 'IPv6'], { queued: (f) => queued.push(f) });
    t.listAll();
    await t.advance(0);
    queued.length = 0;
    t.proxier.requestFullSync();
    expect(t.mode.fullRequests).toBe(1);
    expect(queued).toEqual(['IPv4', 'IPv6']);
    await t.advance(MIN);
    expect(t.mode.calls.map((c) => c.snapshot.family)).toEqual(['IPv4', 'IPv6', 'IPv4', 'IPv6']);
  });
});

describe('Proxier desired state', () => {
  it('rebuilds only the services an event concerns: the others keep their state objects', async () => {
    const t = setup();
    t.event('Service', 'ns/web', web);
    t.event('Service', 'ns/db', db);
    t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.1'));
    t.event('EndpointSlice', 'ns/db-a', slice('db', '10.0.0.2'));
    t.listAll();
    await t.advance(0);
    t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.3'), 'update');
    await t.advance(MIN);
    const [before, after] = t.mode.calls.map((c) => c.snapshot);
    const state = (s: Snapshot, key: string) => s.services.find((x) => x.service.key === key);
    expect(state(after!, 'ns/db:p80')).toBe(state(before!, 'ns/db:p80'));
    expect(state(after!, 'ns/web:p80')).not.toBe(state(before!, 'ns/web:p80'));
    expect(endpointsOf(after!, 'ns/web:p80')).toEqual(['10.0.0.3']);
  });

  it('moves a relabelled slice to its new service, and a Node change rebuilds every service', async () => {
    const t = setup();
    t.event('Service', 'ns/web', web);
    t.event('Service', 'ns/db', db);
    t.event('EndpointSlice', 'ns/shared', {
      ...slice('web', '10.0.0.1'),
      metadata: { name: 'shared', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    });
    t.listAll();
    await t.advance(0);
    t.event(
      'EndpointSlice',
      'ns/shared',
      { ...slice('db', '10.0.0.1'), metadata: { name: 'shared', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'db' } } },
      'update',
    );
    await t.advance(MIN);
    const moved = t.mode.calls[1]!.snapshot;
    expect(endpointsOf(moved, 'ns/web:p80')).toEqual([]);
    expect(endpointsOf(moved, 'ns/db:p80')).toEqual(['10.0.0.1']);

    t.event('Node', 'node-1', makeNode('node-1', { addresses: ['192.168.0.9'], zone: 'z1' }));
    await t.advance(MIN);
    const after = t.mode.calls[2]!.snapshot;
    for (const key of ['ns/web:p80', 'ns/db:p80']) {
      expect(after.services.find((x) => x.service.key === key)).not.toBe(moved.services.find((x) => x.service.key === key));
    }
    expect(after.node.zone).toBe('z1');
  });

  it('keeps every snapshot sorted by service key as services come, change, turn headless and go (the order is cached between key changes)', async () => {
    const t = setup(['IPv4']);
    const svc = (name: string, clusterIP: string) => makeService('ns', name, { clusterIP, ports: [{ name: 'p80', port: 80 }] });
    const keysOf = (s: Snapshot) => s.services.map((x) => x.service.key);
    t.event('Service', 'ns/web', web);
    t.event('Service', 'ns/db', db);
    t.listAll();
    await t.advance(0);
    expect(keysOf(t.mode.calls[0]!.snapshot)).toEqual(['ns/db:p80', 'ns/web:p80']);
    const steps: [() => void, string[]][] = [
      [() => t.event('Service', 'ns/app', svc('app', '172.30.0.30')), ['ns/app:p80', 'ns/db:p80', 'ns/web:p80']],
      [() => t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.1')), ['ns/app:p80', 'ns/db:p80', 'ns/web:p80']],
      [() => t.event('Service', 'ns/db', null, 'delete'), ['ns/app:p80', 'ns/web:p80']],
      [() => t.event('Service', 'ns/app', svc('app', 'None'), 'update'), ['ns/web:p80']],
      [() => t.event('Service', 'ns/zed', svc('zed', '172.30.0.40')), ['ns/web:p80', 'ns/zed:p80']],
      [() => t.event('Service', 'ns/app', svc('app', '172.30.0.30'), 'update'), ['ns/app:p80', 'ns/web:p80', 'ns/zed:p80']],
    ];
    for (const [change, keys] of steps) {
      const before = t.mode.calls.length;
      change();
      await t.advance(MIN);
      expect(t.mode.calls.slice(before).map((c) => keysOf(c.snapshot))).toEqual([keys]);
    }
  });

  it('a deleted service leaves the snapshot; an unnamed slice is reported once it arrives', async () => {
    const problems: ObjectProblem[] = [];
    const t = setup(['IPv4'], { problem: (p) => problems.push(p) });
    t.event('Service', 'ns/web', web);
    t.listAll();
    await t.advance(0);
    t.event('Service', 'ns/web', null, 'delete');
    t.event('EndpointSlice', 'ns/stray', { ...slice('web', '10.0.0.1'), metadata: { name: 'stray', namespace: 'ns', labels: {} } });
    await t.advance(MIN);
    expect(t.mode.calls[1]!.snapshot.services).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([
      'EndpointSlice ns/ns/stray: metadata.labels["kubernetes.io/service-name"]: missing: the slice belongs to no service',
    ]);
  });

  it('reports each problem of a Service once, also one only a later IP family sees', () => {
    const problems: ObjectProblem[] = [];
    const t = setup(['IPv4', 'IPv6'], { problem: (p) => problems.push(p) });
    // No ipFamilies: upstream proxies spec.clusterIP (IPv4) only; the IPv6 entry is reported by the IPv6 pass.
    const svc = makeService('ns', 's', {
      clusterIPs: ['172.30.0.10', 'fd00::10'],
      spec: { ipFamilies: undefined },
      ports: [
        { name: 'ok', port: 80 },
        { name: 'bad', port: 0 },
      ],
    });
    t.event('Service', 'ns/s', svc);
    const snapshots = t.proxier.snapshots();
    expect(snapshots.map((s) => s.services.length)).toEqual([1, 0]);
    expect(problems.map(formatProblem)).toEqual([
      'Service ns/s: spec.ports[1].port: must be an integer from 1 to 65535; got 0',
      'Service ns/s: spec.clusterIPs[1]: fd00::10 not programmed: without spec.ipFamilies upstream proxies spec.clusterIP only',
    ]);
  });
});

describe('Proxier hooks', () => {
  it('hands each sync the trigger times of the slices changed since the start (network programming latency), once', async () => {
    const synced: number[][] = [];
    const t = setup(['IPv4'], { synced: (_f, r) => synced.push([...r.triggerTimes]) });
    t.event('Service', 'ns/web', web);
    t.event(
      'EndpointSlice',
      'ns/web-a',
      slice('web', '10.0.0.1', { 'endpoints.kubernetes.io/last-change-trigger-time': new Date(T0 - 5000).toISOString() }),
    );
    t.listAll();
    await t.advance(0);
    t.event(
      'EndpointSlice',
      'ns/web-a',
      slice('web', '10.0.0.2', { 'endpoints.kubernetes.io/last-change-trigger-time': new Date(T0 + 200).toISOString() }),
      'update',
    );
    await t.advance(MIN);
    await t.advance(PERIOD);
    // Upstream observes only changes after the proxier started; a periodic sync carries none.
    expect(synced).toEqual([[], [T0 + 200], []]);
  });

  it('counts service and endpoint changes pending (reset by each sync) and in total', async () => {
    const seen: string[] = [];
    const t = setup(['IPv4'], { changes: (p, c) => seen.push(`${p.services}/${p.endpoints} ${c.services}/${c.endpoints}`) });
    t.listAll();
    t.event('Service', 'ns/web', web);
    t.event('EndpointSlice', 'ns/web-a', slice('web', '10.0.0.1'));
    t.event('Node', 'node-1', makeNode('node-1'));
    await t.advance(0);
    expect(seen).toEqual(['1/0 1/0', '1/1 1/1', '1/1 1/1', '0/0 1/1']);
  });
});

describe('Proxier ServiceCIDRs (upstream ServiceCIDRConfig -> OnServiceCIDRsChanged)', () => {
  const kubernetes = makeServiceCIDR('kubernetes', ['172.30.0.0/16', 'fd00:172:30::/112']);

  it('hands each family its ServiceCIDRs, and a change of them syncs (upstream waits for the next full sync)', async () => {
    const t = setup(['IPv4', 'IPv6']);
    t.event('ServiceCIDR', 'kubernetes', kubernetes);
    t.listAll();
    await t.advance(0);
    expect(t.mode.calls.map((c) => [c.snapshot.family, c.snapshot.serviceCIDRs])).toEqual([
      ['IPv4', ['172.30.0.0/16']],
      ['IPv6', ['fd00:172:30::/112']],
    ]);
    t.event('ServiceCIDR', 'extra', makeServiceCIDR('extra', ['10.200.0.0/16']));
    await t.advance(MIN);
    expect(t.mode.calls.slice(2).map((c) => c.snapshot.serviceCIDRs)).toEqual([['10.200.0.0/16', '172.30.0.0/16'], ['fd00:172:30::/112']]);
    t.proxier.onEvent({ type: 'delete', kind: 'ServiceCIDR', key: 'kubernetes', old: kubernetes, obj: null });
    t.proxier.onEvent({ type: 'delete', kind: 'ServiceCIDR', key: 'extra', old: null, obj: null });
    await t.advance(MIN);
    expect(t.mode.calls.slice(4).map((c) => c.snapshot.serviceCIDRs)).toEqual([undefined, undefined]);
  });

  it('tells the hooks when the ServiceCIDRs change, and not when an update leaves them as they were', async () => {
    const seen: string[] = [];
    const t = setup(['IPv4'], { serviceCIDRsChanged: (c) => seen.push([...c.IPv4, ...c.IPv6].join(' ')) });
    t.listAll();
    await t.advance(0);
    t.event('ServiceCIDR', 'kubernetes', kubernetes);
    await t.advance(MIN);
    t.proxier.onEvent({ type: 'update', kind: 'ServiceCIDR', key: 'kubernetes', old: kubernetes, obj: { ...kubernetes, status: {} } });
    await t.advance(MIN);
    t.proxier.onEvent({ type: 'delete', kind: 'ServiceCIDR', key: 'kubernetes', old: kubernetes, obj: null });
    await t.advance(MIN);
    expect(seen).toEqual(['172.30.0.0/16 fd00:172:30::/112', '']);
  });

  it('does not hold the start-up gate: the first sync goes without them, as upstream does not wait for their informer', async () => {
    const t = setup();
    t.listAll();
    await t.advance(0);
    expect(t.mode.calls).toHaveLength(1);
    expect(t.mode.calls[0]!.snapshot.serviceCIDRs).toBeUndefined();
  });

  it('reports a ServiceCIDR that is not one, by name and field, and keeps the good ones', async () => {
    const problems: string[] = [];
    const t = setup(['IPv4'], { problem: (p) => problems.push(formatProblem(p)) });
    t.event('ServiceCIDR', 'kubernetes', kubernetes);
    t.event('ServiceCIDR', 'typo', makeServiceCIDR('typo', ['10.96.0.0/40']));
    t.listAll();
    await t.advance(0);
    expect(problems).toEqual(['ServiceCIDR typo: spec.cidrs[0]: not a CIDR: "10.96.0.0/40"; ignored']);
    expect(t.mode.calls[0]!.snapshot.serviceCIDRs).toEqual(['172.30.0.0/16']);
  });
});

describe("Proxier: this host's interface addresses (upstream GetNodeIPs, listed by syncProxyRules)", () => {
  it('gives every family the same read; reads at the first and every periodic sync and once a sync period old, not at the change-triggered syncs in between', async () => {
    let reads = 0;
    let host = ['127.0.0.1', '192.168.0.2', 'fd00::2'];
    const t = setup(['IPv4', 'IPv6'], {}, () => (reads++, host));
    t.listAll();
    await t.advance(0);
    expect(reads).toBe(1);
    expect(t.mode.calls.map((c) => c.snapshot.hostAddresses)).toEqual([host, host]);

    // Events: their syncs reuse the read (an address change meanwhile waits for the next read).
    host = ['127.0.0.1', '192.168.0.2', '192.168.0.7', 'fd00::2'];
    for (let i = 0; i < 5; i++) {
      t.event('Service', 'ns/web', makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80 + i }] }));
      await t.advance(MIN);
    }
    expect(reads).toBe(1);
    expect(t.mode.calls.at(-1)!.snapshot.hostAddresses).not.toContain('192.168.0.7');

    // Events every second for longer than a sync period (no periodic sync comes): a change-triggered sync reads again.
    for (let i = 0; i < PERIOD / MIN; i++) {
      t.event('Service', 'ns/web', makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 1000 + i }] }));
      await t.advance(MIN);
    }
    expect(reads).toBe(2);
    expect(t.mode.calls.every((c) => c.ctx.periodic === false)).toBe(true);
    expect(t.mode.calls.at(-1)!.snapshot.hostAddresses).toContain('192.168.0.7');

    // Quiet: the periodic sync reads.
    host = ['127.0.0.1', 'fd00::2'];
    await t.advance(PERIOD);
    expect(t.mode.calls.at(-1)!.ctx.periodic).toBe(true);
    expect(reads).toBe(3);
    expect(t.mode.calls.at(-1)!.snapshot.hostAddresses).toEqual(host);
  });

  it("without a reader, snapshots carry none (the Node object's addresses stand in)", async () => {
    const t = setup();
    t.listAll();
    await t.advance(0);
    expect(t.mode.calls[0]!.snapshot.hostAddresses).toBeUndefined();
  });
});
