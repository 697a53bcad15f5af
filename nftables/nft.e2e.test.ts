/**
 * The nftables core against the real nft 1.0.6 and kernel, each test in a
 * network namespace of its own (needs root): the fake's semantics cases give
 * the same outcome, error kind and line as the kernel and leave the same
 * table; every rendered table passes `nft --check`, loads and lists back
 * equal to the render; a sequence of partial syncs converges to exactly the
 * full render; stale chains are deleted a second after they were flushed.
 */
import { describe, expect, it, vi } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { makeEndpointSlice, makeService, makeServiceCIDR } from '../test/builders.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { NftError } from './errors.ts';
import { FakeNft } from './fake-nft.ts';
import { SEMANTICS } from './fake-nft.case.ts';
import { planColdStart } from './cold-start.ts';
import { planFullSync } from './full-sync.ts';
import { nftNamespaces } from './nft-namespace.case.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import { planPartialSync } from './partial-sync.ts';
import { renderNftables, tableOf } from './render.ts';
import { operationLines } from './script.ts';
import type { Snapshot } from '../proxier/types.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';
import { SyncDriver } from './sync.case.ts';
import { upstreamOptions, upstreamSnapshot } from './upstream.case.ts';
import { checkKernelVersion, checkNftVersion } from './version.ts';

const runner = createExecaRunner();
const inNamespace = nftNamespaces('kptnft');

describe('the fake nft agrees with the kernel', () => {
  for (const c of SEMANTICS) {
    it(c.name, async () => {
      await inNamespace(async (nft) => {
        const fake = new FakeNft();
        if (c.setup) {
          await fake.run(c.setup);
          await nft.run(c.setup);
        }
        const outcome = async (api: { run(t: string): Promise<void> }) =>
          api.run(c.tx).then(
            () => null,
            (e: unknown) => e as NftError,
          );
        const [f, r] = [await outcome(fake), await outcome(nft)];
        expect(r === null ? 'ok' : r.kind, r?.message).toBe(c.expect);
        expect(f === null ? 'ok' : f.kind).toBe(c.expect);
        if (c.line !== undefined) expect(r!.line).toBe(c.line);
        const [ft, rt] = [await fake.list('ip'), await nft.list('ip')];
        if (ft === null || rt === null) expect(ft).toBe(rt);
        else expect(isEmptyDiff(diffTables(ft, rt)), JSON.stringify(diffTables(ft, rt))).toBe(true);
      });
    });
  }
});

describe('rendered tables in the kernel', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    it(`every ${family} rule shape passes nft --check, loads, and lists back equal to the render`, async () => {
      await inNamespace(async (nft) => {
        const render = renderNftables(shapesSnapshot(family), shapesOptions(family));
        const text = planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text;
        await nft.check(text);
        expect(await nft.list(family === 'IPv4' ? 'ip' : 'ip6')).toBeNull();
        await nft.run(text);
        const d = diffTables(tableOf(render), await nft.list(family === 'IPv4' ? 'ip' : 'ip6'));
        expect(isEmptyDiff(d), JSON.stringify(d, null, 1)).toBe(true);
        // A second full sync over the loaded table (base chains re-created again) is accepted too.
        await nft.run(text);
        // The cheap name listing sees the same objects, and nothing of other tables; nft's output is read item by
        // item (names-json.ts), not through JSON.parse.
        await nft.run(`add table ${family === 'IPv4' ? 'ip' : 'ip6'} other\nadd chain ${family === 'IPv4' ? 'ip' : 'ip6'} other services\n`);
        const parse = vi.spyOn(JSON, 'parse');
        const names = (await nft.listNames(family === 'IPv4' ? 'ip' : 'ip6'))!;
        expect(parse).not.toHaveBeenCalled();
        parse.mockRestore();
        const table = tableOf(render);
        expect([...names.chains].sort()).toEqual(table.chains.map((c) => c.name).sort());
        expect(names.sets.map((x) => `${x.kind} ${x.name}`).sort()).toEqual(table.sets.map((x) => `${x.kind} ${x.name}`).sort());
      });
    });
  }

  it('ServiceCIDRs that overlap or touch (a cluster growing its Service range) list back equal to the render: the kernel merges them', async () => {
    await inNamespace(async (nft) => {
      const cidrs = ['10.96.0.0/16', '10.97.0.0/16', '10.96.0.0/20', '10.200.0.0/24', '10.200.1.0/25', 'fd00:10:96::/112', 'fd00:10:96::1:0/112'];
      for (const family of ['IPv4', 'IPv6'] as const) {
        const snapshot = upstreamSnapshot(
          family,
          [],
          [],
          [makeServiceCIDR('kubernetes', cidrs.slice(0, 2)), makeServiceCIDR('more', cidrs.slice(2))],
        );
        const render = renderNftables(snapshot, upstreamOptions(family));
        await nft.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
        const live = (await nft.list(family === 'IPv4' ? 'ip' : 'ip6'))!;
        const d = diffTables(tableOf(render), live);
        expect(isEmptyDiff(d), JSON.stringify(d, null, 1)).toBe(true);
        const drop = live.chains.find((c) => c.name === 'cluster-ips-check')!.rules.find((r) => r.includes('unallocated'));
        expect(drop).toBe(
          family === 'IPv4'
            ? 'ip daddr { 10.96.0.0/15, 10.200.0.0-10.200.1.127 } drop comment "Drop traffic to unallocated ClusterIPs"'
            : 'ip6 daddr fd00:10:96::/111 drop comment "Drop traffic to unallocated ClusterIPs"',
        );
      }
    });
  });

  it('a service without endpoints whose names are as long as the API server allows: its element comment is cut to 128 bytes, and the kernel takes it', async () => {
    await inNamespace(async (nft) => {
      const ns = `n${'s'.repeat(62)}`;
      const name = `s${'v'.repeat(62)}`;
      const svc = makeService(ns, name, { clusterIP: '172.30.0.99', ports: [{ name: 'https-metrics-x', port: 443 }] });
      const render = renderNftables(upstreamSnapshot('IPv4', [svc], []), upstreamOptions('IPv4'));
      // "ns/name:port" is 143 characters; nft refuses a comment over 128 bytes ("comment too long").
      await nft.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
      const live = (await nft.list('ip'))!;
      const element = live.sets.find((x) => x.name === 'no-endpoint-services')!.elements![0]!;
      expect(element.comment).toBe(`${ns}/${name}:https-metrics-x`.slice(0, 128));
      expect(isEmptyDiff(diffTables(tableOf(render), live))).toBe(true);
    });
  });

  it('--traffic-counters: a named counter per endpoint chain, which keeps what it counted through a full sync and a chain rewrite', async () => {
    await inNamespace(async (nft) => {
      const options = upstreamOptions('IPv4', { trafficCounters: true });
      const driver = new SyncDriver(nft, options);
      const service = (affinity: boolean) =>
        makeService('ns1', 's1', {
          clusterIP: '172.30.0.1',
          ports: [{ name: 'p80', port: 80 }],
          ...(affinity ? { sessionAffinity: 'ClientIP' } : {}),
        });
      const snap = (ips: string[], affinity = false) => upstreamSnapshot('IPv4', [service(affinity)], [eps('ns1', 's1', ips)]);
      await driver.sync(snap(['10.0.1.1', '10.0.1.2']), 0);
      const names = tableOf(driver.lastRender!).counters!;
      expect((await nft.counters('ip'))!.map((c) => c.name)).toEqual(names);
      const [a, b] = names as [string, string];
      // What traffic would have counted, given to a's counter by hand (nft takes values only when it makes one).
      const rules = driver.lastRender!.services[0]!.chains.find((c) => c.name === a)!.rules;
      await nft.run(
        `flush chain ip kube-proxy ${a}\ndelete counter ip kube-proxy ${a}\n` +
          `add counter ip kube-proxy ${a} { packets 7 bytes 420 }\nadd chain ip kube-proxy ${a} { ${rules.join(' ; ')} ; }\n`,
      );
      // A full sync adds every counter again and rewrites every chain; a change of affinity rewrites both endpoint
      // chains (another rule): neither resets a counter.
      await driver.sync(snap(['10.0.1.1', '10.0.1.2']), 1000, true);
      await driver.sync(snap(['10.0.1.1', '10.0.1.2'], true), 2000);
      expect(operationLines(driver.last!.text).some((l) => l.startsWith(`add rule ip kube-proxy ${a} update @affinity-`))).toBe(true);
      const values = new Map((await nft.counters('ip'))!.map((c) => [c.name, [c.packets, c.bytes]]));
      expect(values).toEqual(
        new Map([
          [a, [7, 420]],
          [b, [0, 0]],
        ]),
      );
      const d = diffTables(tableOf(driver.lastRender!), await nft.list('ip'));
      expect(isEmptyDiff(d), JSON.stringify(d)).toBe(true);
      // The agent's reading takes the values and zeroes them (nft reset counters), as FakeNft does.
      expect((await nft.counters('ip', { reset: true }))!.find((c) => c.name === a)).toEqual({ name: a, packets: 7, bytes: 420 });
      expect((await nft.counters('ip'))!.map((c) => c.packets + c.bytes)).toEqual([0, 0]);
      // An endpoint gone: its chain is flushed, then deleted with its counter a second later.
      const gone = names.find((n) => n.includes('10.0.1.1/'))!;
      await driver.sync(snap(['10.0.1.2'], true), 3000);
      expect((await nft.counters('ip'))!.map((c) => c.name)).toContain(gone);
      await driver.sync(snap(['10.0.1.2'], true), 20_000);
      expect((await nft.counters('ip'))!.map((c) => c.name)).toEqual(names.filter((n) => n !== gone));
    });
  });

  it('a cold start in chunks of service ports loads the same table', async () => {
    await inNamespace(async (nft) => {
      const render = renderNftables(shapesSnapshot('IPv4'), shapesOptions('IPv4'));
      const plan = planColdStart(render, { servicesPerTransaction: 2 });
      for (const t of [plan.text, ...plan.more]) await nft.run(t);
      const d = diffTables(tableOf(render), await nft.list('ip'));
      expect(isEmptyDiff(d), JSON.stringify(d, null, 1)).toBe(true);
    });
  });

  it('nft --check reports the failing line for a broken transaction, and the kernel keeps nothing of it', async () => {
    await inNamespace(async (nft) => {
      const err = (await nft
        .check('add table ip kube-proxy\nadd chain ip kube-proxy a\nadd rule ip kube-proxy a jump nowhere\n')
        .catch((e: unknown) => e)) as NftError;
      expect(err).toBeInstanceOf(NftError);
      expect(err.kind).toBe('not-found');
      expect(err.line).toBe(3);
      expect(await nft.list('ip')).toBeNull();
      expect(await nft.listNames('ip')).toBeNull();
      expect(await nft.deleteTable('ip')).toBe(false);
    });
  });

  it("the machine's nft and kernel pass the version floors", async () => {
    await inNamespace(async (nft) => {
      expect(checkNftVersion(await nft.version())).toBeNull();
      const uname = await runner.run('uname', ['-r']);
      expect(checkKernelVersion(uname.stdout, {})).toBeNull();
    });
  });
});

const svc = (ns: string, name: string, ip: string, o: Record<string, unknown> = {}) =>
  makeService(ns, name, { clusterIP: ip, ports: [{ name: 'p80', port: 80, ...o }] });
const eps = (ns: string, name: string, ips: string[], local = false) =>
  makeEndpointSlice(ns, name, `${name}-1`, {
    endpoints: ips.map((ip) => ({ ip, ...(local ? { nodeName: 'test-node' } : {}) })),
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  });

describe('partial syncs in the kernel', () => {
  it('converge to exactly the full render after every change, and stale chains go a second later', async () => {
    await inNamespace(async (nft) => {
      const driver = new SyncDriver(nft, upstreamOptions('IPv4'));
      const services = new Map<string, unknown>();
      const slices = new Map<string, unknown>();
      // The planner's clock: steps 10 ms apart however slow the machine is, then a real second's wait before the last one.
      let now = Date.now();
      const step = async (what: string, change: () => void, advance = 10) => {
        change();
        now += advance;
        const plan = await driver.sync(upstreamSnapshot('IPv4', [...services.values()], [...slices.values()]), now);
        const d = diffTables(tableOf(driver.lastRender!), await nft.list('ip'));
        expect([...d.extraChains].sort(), what).toEqual([...driver.applied!.stale.keys()].sort());
        expect(isEmptyDiff({ ...d, extraChains: [] }), `${what}: ${JSON.stringify(d, null, 1)}`).toBe(true);
        return plan;
      };
      await step('start', () => {
        for (let i = 1; i <= 5; i++) {
          services.set(`s${i}`, svc('ns1', `s${i}`, `172.30.0.${i}`));
          slices.set(`s${i}`, eps('ns1', `s${i}`, [`10.0.${i}.1`, `10.0.${i}.2`]));
        }
      });
      await step('endpoint replaced', () => slices.set('s1', eps('ns1', 's1', ['10.0.1.1', '10.0.1.3'])));
      await step('service deleted', () => {
        services.delete('s2');
        slices.delete('s2');
      });
      await step('endpoints gone', () => slices.set('s3', eps('ns1', 's3', [])));
      await step('LB with source ranges, affinity and eTP Local', () => {
        services.set(
          's4',
          makeService('ns1', 's4', {
            type: 'LoadBalancer',
            clusterIP: '172.30.0.4',
            ports: [{ name: 'p80', port: 80, nodePort: 3004 }],
            ingress: [{ ip: '1.2.3.4' }],
            externalTrafficPolicy: 'Local',
            healthCheckNodePort: 30004,
            loadBalancerSourceRanges: ['203.0.113.0/25'],
            sessionAffinity: 'ClientIP',
          }),
        );
        slices.set('s4', eps('ns1', 's4', ['10.0.4.1', '10.0.4.2'], true));
      });
      await step("endpoint added to the service with affinity (its other endpoint's set is only named)", () =>
        slices.set('s4', eps('ns1', 's4', ['10.0.4.1', '10.0.4.2', '10.0.4.3'], true)),
      );
      await step('affinity timeout changed', () =>
        services.set(
          's4',
          makeService('ns1', 's4', {
            type: 'LoadBalancer',
            clusterIP: '172.30.0.4',
            ports: [{ name: 'p80', port: 80, nodePort: 3004 }],
            ingress: [{ ip: '1.2.3.4' }],
            externalTrafficPolicy: 'Local',
            healthCheckNodePort: 30004,
            loadBalancerSourceRanges: ['203.0.113.0/25'],
            sessionAffinity: 'ClientIP',
            sessionAffinityTimeout: 60,
          }),
        ),
      );
      await step('affinity and LB gone again', () => services.set('s4', svc('ns1', 's4', '172.30.0.4')));
      await step('endpoints back', () => slices.set('s3', eps('ns1', 's3', ['10.0.3.9'])));
      const stale = [...driver.applied!.stale.keys()];
      expect(stale.length).toBeGreaterThan(0);
      const unchanged = await step('nothing changed', () => undefined);
      expect(unchanged.text).toBe('');
      await new Promise((r) => setTimeout(r, 1000));
      const later = await step('a second later', () => undefined, 1000);
      expect(later.cleanupChains).toEqual(stale.sort());
      expect(later.text).toBe('');
      expect(driver.applied!.stale.size).toBe(0);
      expect((await nft.list('ip'))!.chains.map((c) => c.name).filter((n) => stale.includes(n))).toEqual([]);
    });
  });
});

/** nfnetlink message types nft sent as requests (`nft --debug=mnl`): 0x0a04 GETCHAIN, 0x0a0a GETSET, ... */
async function requestsOf(exec: CommandRunner, text: string): Promise<number[]> {
  const r = await exec.run('nft', ['--debug=mnl', '-f', '-'], { input: text });
  expect(r.code, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^\| (\d{5}) \| R/gm)].map((m) => Number(m[1]));
}
const GETCHAIN = 0x0a04;
const GETSET = 0x0a0a;

describe('what nft 1.0.6 loads before it reads a transaction (cache.c nft_cache_evaluate)', () => {
  it('dumps no chain or set for a partial sync without deletes, but every chain for one with a delete', async () => {
    await inNamespace(async (nft, exec) => {
      const driver = new SyncDriver(nft, upstreamOptions('IPv4'));
      const snap = (ips: string[], withS2: boolean) =>
        upstreamSnapshot(
          'IPv4',
          [svc('ns1', 's1', '172.30.0.1', {}), ...(withS2 ? [svc('ns1', 's2', '172.30.0.2')] : [])],
          [eps('ns1', 's1', ips), eps('ns1', 's2', ['10.0.2.1'])],
        );
      await driver.sync(snap(['10.0.1.1'], true), 1000);
      // Plan the next syncs by hand, apply them with --debug=mnl, and keep the driver's state in step.
      const plan = (s: Snapshot, now: number) => planPartialSync(renderNftables(s, upstreamOptions('IPv4')), driver.applied!, now);
      const endpoint = plan(snap(['10.0.1.2'], true), 2000);
      expect(await requestsOf(exec, endpoint.text)).not.toContain(GETCHAIN);
      driver.applied = endpoint.next;
      const gone = plan(snap(['10.0.1.2'], false), 3000);
      expect(gone.text).toContain('delete element');
      const requests = await requestsOf(exec, gone.text);
      expect(requests).toContain(GETCHAIN);
      expect(requests).toContain(GETSET);
      driver.applied = gone.next;
      const d = diffTables(tableOf(renderNftables(snap(['10.0.1.2'], false), upstreamOptions('IPv4'))), await nft.list('ip'));
      expect(isEmptyDiff({ ...d, extraChains: [] }), JSON.stringify(d)).toBe(true);
    });
  });
  it('--traffic-counters: an endpoint change adds its counter without making nft dump a chain or set', async () => {
    await inNamespace(async (nft, exec) => {
      const options = upstreamOptions('IPv4', { trafficCounters: true });
      const driver = new SyncDriver(nft, options);
      const snap = (ips: string[]) => upstreamSnapshot('IPv4', [svc('ns1', 's1', '172.30.0.1', {})], [eps('ns1', 's1', ips)]);
      await driver.sync(snap(['10.0.1.1']), 1000);
      const endpoint = planPartialSync(renderNftables(snap(['10.0.1.1', '10.0.1.2']), options), driver.applied!, 2000);
      expect(endpoint.text).toContain('add counter ip kube-proxy endpoint-');
      expect(await requestsOf(exec, endpoint.text)).not.toContain(GETCHAIN);
      expect(await requestsOf(exec, endpoint.text)).not.toContain(GETSET);
    });
  });
});
