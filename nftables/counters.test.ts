/**
 * --traffic-counters in the nftables mode (kube-proxy-ts only): the named
 * counter of each endpoint chain, from the render through the transactions
 * (FakeNft, whose counter semantics fake-nft.case.ts checks against the
 * kernel) to the mode's totals.
 */
import { describe, expect, it, vi } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { ManualClock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import type { Snapshot } from '../proxier/types.ts';
import { counterOwners, counterReadings, parseCounterValues } from './counters.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { FakeNft } from './fake-nft.ts';
import { cleanupText } from './full-sync.ts';
import { NftablesMode } from './nftables-mode.ts';
import { renderNftables, tableOf } from './render.ts';
import { operationLines } from './script.ts';
import { SyncDriver } from './sync.case.ts';
import { upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const svc = (name: string, ip: string, port: number, extra: Record<string, unknown> = {}) =>
  makeService('ns1', name, { clusterIP: ip, ports: [{ name: `p${port}`, port }], ...extra });
const eps = (name: string, port: number, ips: string[]) =>
  makeEndpointSlice('ns1', name, `${name}-1`, { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: `p${port}`, port, protocol: 'TCP' }] });

const counting = upstreamOptions('IPv4', { trafficCounters: true });
const snap = (ips: string[], extra: Record<string, unknown> = {}): Snapshot =>
  upstreamSnapshot('IPv4', [svc('web', '172.30.0.41', 80, extra)], [eps('web', 80, ips)]);
const chainOf = (ip: string) => renderNftables(snap([ip]), counting).services[0]!.chains.find((c) => c.name.includes(`__${ip}/`))!.name;

describe('rendering', () => {
  it('counts each endpoint chain into a counter of its name, and nothing without --traffic-counters (upstream ruleset)', () => {
    const r = renderNftables(snap(['10.180.0.1', '10.180.0.2']), counting);
    const endpoints = r.services[0]!.chains.filter((c) => c.name.startsWith('endpoint-'));
    expect(endpoints).toHaveLength(2);
    for (const c of endpoints)
      expect(c.rules.at(-1)).toMatch(new RegExp(`^meta l4proto tcp counter name "${c.name}" dnat to 10\\.180\\.0\\.\\d:80$`));
    expect(tableOf(r).counters).toEqual(endpoints.map((c) => c.name));
    const plain = tableOf(renderNftables(snap(['10.180.0.1', '10.180.0.2']), upstreamOptions('IPv4')));
    expect(plain.counters).toBeUndefined();
    expect(plain.chains.flatMap((c) => c.rules).filter((x) => x.includes('counter'))).toEqual([]);
  });

  it('names each counter its service port and endpoint from the render, for the longest names the API server takes', () => {
    const long = 'n'.repeat(63);
    const services = [
      svc('web', '172.30.0.41', 80),
      makeService(long, long, { clusterIP: '172.30.0.42', ports: [{ name: 'p'.repeat(15), port: 81 }] }),
    ];
    const slices = [
      eps('web', 80, ['10.180.0.1']),
      makeEndpointSlice(long, long, 'x', { endpoints: [{ ip: '10.180.0.9' }], ports: [{ name: 'p'.repeat(15), port: 81, protocol: 'TCP' }] }),
    ];
    const r = renderNftables(upstreamSnapshot('IPv4', services, slices), counting);
    const owners = [...counterOwners(r).values()].sort((a, b) => a.endpoint.localeCompare(b.endpoint));
    expect(owners).toEqual([
      { service: 'ns1/web:p80', endpoint: '10.180.0.1:80' },
      { service: `${long}/${long}:${'p'.repeat(15)}`, endpoint: '10.180.0.9:81' },
    ]);
    const v6 = renderNftables(
      upstreamSnapshot(
        'IPv6',
        [makeService('ns1', 'web', { clusterIP: 'fd00:172:30::41', ports: [{ name: 'p80', port: 80 }] })],
        [eps('web', 80, ['fd00:10:180::1'])],
      ),
      upstreamOptions('IPv6', { trafficCounters: true }),
    );
    expect([...counterOwners(v6).values()]).toEqual([{ service: 'ns1/web:p80', endpoint: '[fd00:10:180::1]:80' }]);
    expect(counterOwners(renderNftables(snap(['10.180.0.1']), upstreamOptions('IPv4'))).size).toBe(0);
  });
});

describe('nft -j list counters', () => {
  // As nft 1.0.6 prints it (measured), with another table's counter beside ours.
  const LISTING =
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, ' +
    '{"counter": {"family": "ip", "name": "endpoint-AAAA-ns/web/tcp/http__10.0.0.2/80", "table": "kube-proxy", "handle": 3, "packets": 12, "bytes": 720}}, ' +
    '{"counter": {"family": "ip", "name": "mine", "table": "other", "handle": 4, "packets": 1, "bytes": 60}}]}\n';

  it("reads one table's counters item by item, without JSON.parse", () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(parseCounterValues(LISTING, 'ip', 'kube-proxy')).toEqual([
        { name: 'endpoint-AAAA-ns/web/tcp/http__10.0.0.2/80', packets: 12, bytes: 720 },
      ]);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('falls back to JSON.parse for an item the scan cannot read whole, with the same result', () => {
    const odd = LISTING.replace('"name": "mine"', '"name": "a{b}", "comment": "x"');
    expect(parseCounterValues(odd, 'ip', 'kube-proxy')).toEqual([{ name: 'endpoint-AAAA-ns/web/tcp/http__10.0.0.2/80', packets: 12, bytes: 720 }]);
    expect(() => parseCounterValues('Error: no such table', 'ip', 'kube-proxy')).toThrow();
  });

  it('keeps the readings of the endpoint chains the render has; a stale chain awaiting deletion is left out', () => {
    const r = renderNftables(snap(['10.180.0.1']), counting);
    const name = chainOf('10.180.0.1');
    const readings = counterReadings(
      [
        { name, packets: 3, bytes: 180 },
        { name: 'endpoint-ZZZZZZZZ-ns1/web/tcp/p80__10.180.0.7/80', packets: 9, bytes: 540 },
      ],
      counterOwners(r),
    );
    expect(readings).toEqual([{ object: name, service: 'ns1/web:p80', endpoint: '10.180.0.1:80', packets: 3, bytes: 180 }]);
  });
});

describe('the syncs keep each counter as long as its endpoint chain', () => {
  it('adds a counter before the first rule naming it, in full and partial syncs, and keeps its values through both', async () => {
    const nft = new FakeNft();
    const d = new SyncDriver(nft, counting);
    const first = await d.sync(snap(['10.180.0.1']), 0);
    const a = chainOf('10.180.0.1');
    const ops = operationLines(first.text);
    expect(ops.indexOf(`add counter ip kube-proxy ${a}`)).toBeGreaterThanOrEqual(0);
    expect(ops.indexOf(`add counter ip kube-proxy ${a}`)).toBeLessThan(ops.findIndex((l) => l.includes(`counter name "${a}"`)));
    nft.count('ip', a, 5, 300);

    // An endpoint added: its counter and chain only; the other counter is not touched.
    const b = chainOf('10.180.0.2');
    const partial = await d.sync(snap(['10.180.0.1', '10.180.0.2']), 1000);
    expect(operationLines(partial.text).filter((l) => l.startsWith('add counter'))).toEqual([`add counter ip kube-proxy ${b}`]);
    // A full sync rewrites every chain and adds every counter again: `add` keeps what they counted.
    await d.sync(snap(['10.180.0.1', '10.180.0.2']), 2000, true);
    expect(await nft.counters('ip')).toEqual([
      { name: a, packets: 5, bytes: 300 },
      { name: b, packets: 0, bytes: 0 },
    ]);
    const live = await nft.list('ip');
    expect(isEmptyDiff(diffTables(tableOf(d.lastRender!), live))).toBe(true);
  });

  it('flushes a gone endpoint chain at once and deletes its counter with it a second later', async () => {
    const nft = new FakeNft();
    const d = new SyncDriver(nft, counting);
    await d.sync(snap(['10.180.0.1', '10.180.0.2']), 0);
    const b = chainOf('10.180.0.2');
    // The driver runs each plan's cleanup right away: the chain is stale for less than a second, so it stays.
    await d.sync(snap(['10.180.0.1']), 100);
    expect((await nft.counters('ip'))!.map((c) => c.name)).toContain(b);
    const later = await d.sync(snap(['10.180.0.1']), 20_000);
    expect(operationLines(later.cleanup)).toEqual([
      `delete chain ip kube-proxy ${b}`,
      `add counter ip kube-proxy ${b}`,
      `delete counter ip kube-proxy ${b}`,
    ]);
    expect((await nft.counters('ip'))!.map((c) => c.name)).toEqual([chainOf('10.180.0.1')]);
  });

  it('a deletion without counting does not name counters; with it, a chain that never had one is still deleted', async () => {
    expect(cleanupText('ip', ['endpoint-X-ns/s/tcp/p__10.0.0.1/80'])).toBe('delete chain ip kube-proxy endpoint-X-ns/s/tcp/p__10.0.0.1/80\n');
    const nft = new FakeNft();
    await nft.run('add table ip kube-proxy\nadd chain ip kube-proxy endpoint-X-ns/s/tcp/p__10.0.0.1/80\n');
    await nft.run(cleanupText('ip', ['endpoint-X-ns/s/tcp/p__10.0.0.1/80'], true));
    expect(await nft.list('ip')).toMatchObject({ chains: [] });
  });

  it('a full sync without --traffic-counters deletes the counters an earlier run made (a restart without the flag)', async () => {
    const nft = new FakeNft();
    await new SyncDriver(nft, counting).sync(snap(['10.180.0.1', '10.180.0.2']), 0);
    expect(await nft.counters('ip')).toHaveLength(2);
    const clock = new ManualClock(1_000_000);
    const mode = new NftablesMode({ families: ['IPv4'], render: upstreamOptions('IPv4') }, { nft, clock, logger: silentLogger() });
    await mode.sync(snap(['10.180.0.1', '10.180.0.2']), { periodic: false, previous: null });
    expect(await nft.counters('ip')).toEqual([]);
    // Generation B (the default) writes no endpoint chain without counting: the full sync flushed them as stale.
    const endpointChains = [chainOf('10.180.0.1'), chainOf('10.180.0.2')];
    const d = diffTables(tableOf(mode.lastRender('IPv4')!), await nft.list('ip'));
    expect([...d.extraChains].sort()).toEqual(endpointChains.sort());
    expect(isEmptyDiff({ ...d, extraChains: [] }), JSON.stringify(d)).toBe(true);
    // A second later the cleanup deletes them.
    clock.advance(1000);
    await mode.sync(snap(['10.180.0.1', '10.180.0.2']), { periodic: true, previous: null });
    await mode.deletionsDone();
    expect(isEmptyDiff(diffTables(tableOf(mode.lastRender('IPv4')!), await nft.list('ip')))).toBe(true);
  });
});

describe('NftablesMode with --traffic-counters', () => {
  it('reads (and zeroes) the counters every period into running totals per service port and endpoint, across a full sync', async () => {
    const nft = new FakeNft();
    const clock = new ManualClock(1_000_000);
    const make = () =>
      new NftablesMode(
        { families: ['IPv4'], render: counting, monitorPeriodMs: 60_000, trafficCounters: { periodMs: 1000, maxEndpoints: 100 } },
        { nft, clock, logger: silentLogger() },
      );
    const mode = make();
    expect(mode.inspect.traffic()).toEqual([]);
    const stop = mode.monitor(() => undefined);
    const a = chainOf('10.180.0.1');
    const b = chainOf('10.180.0.2');
    try {
      await mode.sync(snap(['10.180.0.1', '10.180.0.2']), { periodic: false, previous: null });
      nft.count('ip', a, 4, 240);
      await clock.advance(1000);
      expect(mode.inspect.traffic()).toEqual([
        { service: 'ns1/web:p80', endpoint: '10.180.0.1:80', packets: 4, bytes: 240 },
        { service: 'ns1/web:p80', endpoint: '10.180.0.2:80', packets: 0, bytes: 0 },
      ]);
      // The reading zeroed the kernel's counters (nft reset counters): the next one takes only what came after.
      expect((await nft.counters('ip'))!.map((c) => c.packets)).toEqual([0, 0]);
      nft.count('ip', a, 1, 60);
      mode.requestFullSync();
      await mode.sync(snap(['10.180.0.1', '10.180.0.2']), { periodic: false, previous: null });
      nft.count('ip', b, 2, 120);
      await clock.advance(1000);
      expect(mode.inspect.traffic()!.map((t) => [t.packets, t.bytes])).toEqual([
        [5, 300],
        [2, 120],
      ]);
      // An endpoint gone: its series ends; back, it starts again from what its new counter counts.
      await mode.sync(snap(['10.180.0.1']), { periodic: false, previous: null });
      await clock.advance(1000);
      expect(mode.inspect.traffic()!.map((t) => t.endpoint)).toEqual(['10.180.0.1:80']);
      // The table deleted from outside: the reading says so and keeps the totals; once the table is back, its counters
      // (at zero again) add to them, so the series goes on rather than ends.
      const kept = mode.inspect.traffic();
      await nft.deleteTable('ip');
      expect(await mode.readCounters()).toEqual(['IPv4: no table ip kube-proxy (deleted from outside? the next sync makes it again)']);
      expect(mode.inspect.traffic()).toEqual(kept);
      mode.requestFullSync();
      await mode.sync(snap(['10.180.0.1']), { periodic: false, previous: null });
      nft.count('ip', a, 2, 120);
      expect(await mode.readCounters()).toEqual([]);
      expect(mode.inspect.traffic()).toEqual([{ ...kept![0]!, packets: kept![0]!.packets + 2, bytes: kept![0]!.bytes + 120 }]);
    } finally {
      stop();
    }
    // A new process counts from its first reading on: what the kernel counted since the last one.
    nft.count('ip', a, 3, 180);
    const again = make();
    await again.sync(snap(['10.180.0.1']), { periodic: false, previous: null });
    await again.readCounters();
    expect(again.inspect.traffic()).toEqual([{ service: 'ns1/web:p80', endpoint: '10.180.0.1:80', packets: 3, bytes: 180 }]);
  });

  it('has no traffic without the flag', () => {
    const mode = new NftablesMode(
      { families: ['IPv4'], render: upstreamOptions('IPv4') },
      { nft: new FakeNft(), clock: new ManualClock(0), logger: silentLogger() },
    );
    expect(mode.inspect.traffic()).toBeNull();
  });
});
