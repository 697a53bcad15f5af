import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { ManualClock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import { ApplyError } from '../proxier/mode.ts';
import type { Snapshot } from '../proxier/types.ts';
import { diffTables, isEmptyDiff } from './diff.ts';
import { nftFailure } from './errors.ts';
import { FakeNft } from './fake-nft.ts';
import { refusedLine } from './inspect.ts';
import { endpointNames, servicePortNames } from './names.ts';
import { NftablesMode } from './nftables-mode.ts';
import { tableOf } from './render.ts';
import { upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const SVC = makeService('ns1', 'a', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }] });
/** With session affinity: generation B (the default) writes endpoint chains only then. */
const STICKY = makeService('ns1', 'a', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }], sessionAffinity: 'ClientIP' });
const slice = (ips: string[]) =>
  makeEndpointSlice('ns1', 'a', 'a-1', { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] });

function setup(svc: unknown = STICKY) {
  const nft = new FakeNft();
  const clock = new ManualClock(1_000_000);
  const mode = new NftablesMode({ families: ['IPv4'], render: upstreamOptions('IPv4') }, { nft, clock, logger: silentLogger() });
  const snapshot = (ips: string[]): Snapshot => upstreamSnapshot('IPv4', [svc], [slice(ips)]);
  return { nft, clock, mode, snapshot, inspect: mode.inspect };
}

describe('NftablesMode.inspect (/debug/rules, /debug/services)', () => {
  it('shows nothing before the first sync', () => {
    const t = setup();
    expect(t.inspect.rules()).toEqual([{ family: 'IPv4', syntax: 'nft', applied: null, refused: null }]);
    expect(t.inspect.objectsOf('IPv4', t.snapshot(['10.0.1.1']).services[0]!)).toBeNull();
    expect(t.inspect.traffic()).toBeNull();
  });

  it('keeps the applied table as nft -f input that rebuilds the same table in an empty nft', async () => {
    const t = setup();
    const snap = t.snapshot(['10.0.1.1']);
    const report = await t.mode.sync(snap, { periodic: false, previous: null });
    const [rules] = t.inspect.rules();
    expect(rules).toMatchObject({ family: 'IPv4', syntax: 'nft', refused: null, applied: { at: 1_000_000, full: true, bytes: report.bytes } });
    const text = rules!.applied!.text();
    const sp = snap.services[0]!.service;
    const names = servicePortNames(sp);
    const ep = endpointNames(sp, { ip: '10.0.1.1', port: 80 }).chain;
    expect(text).toMatch(/^add table ip kube-proxy /);
    expect(text).toContain(`add chain ip kube-proxy ${names.service}\n`);
    expect(text).toContain(`add rule ip kube-proxy ${ep} meta l4proto tcp dnat to 10.0.1.1:80\n`);
    expect(text).toContain(`add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto ${names.service} }\n`);

    const fresh = new FakeNft();
    await fresh.run(text);
    const d = diffTables(tableOf(t.mode.lastRender('IPv4')!), await fresh.list('ip'));
    expect(isEmptyDiff(d)).toBe(true);
  });

  it("lists a service port's chains and map keys and each endpoint's endpoint- chain (upstream servicePortChainNameBase)", async () => {
    const t = setup();
    const snap = t.snapshot(['10.0.1.1', '10.0.1.2']);
    await t.mode.sync(snap, { periodic: false, previous: null });
    const state = snap.services[0]!;
    const names = servicePortNames(state.service);
    const objects = t.inspect.objectsOf('IPv4', state)!;
    expect(objects.service).toEqual([names.service, 'cluster-ips[172.30.0.41]', 'service-ips[172.30.0.41 . tcp . 80]']);
    expect([...objects.endpoints]).toEqual(['10.0.1.1', '10.0.1.2'].map((ip) => [`${ip}:80`, endpointNames(state.service, { ip, port: 80 }).chain]));
    // Without session affinity generation B writes no endpoint chain: the DNAT is in the service chain's numgen map,
    // whose entry names each endpoint (inspect-generation-b.test.ts).
    const plain = setup(SVC);
    const plainSnap = plain.snapshot(['10.0.1.1', '10.0.1.2']);
    await plain.mode.sync(plainSnap, { periodic: false, previous: null });
    const plainObjects = plain.inspect.objectsOf('IPv4', plainSnap.services[0]!)!;
    expect(plainObjects.service).toEqual([names.service, 'cluster-ips[172.30.0.41]', 'service-ips[172.30.0.41 . tcp . 80]']);
    expect([...plainObjects.endpoints]).toEqual([
      ['10.0.1.1:80', `${names.service} map[0]`],
      ['10.0.1.2:80', `${names.service} map[1]`],
    ]);
    // A service port the last sync did not render has none.
    const other = upstreamSnapshot('IPv4', [makeService('ns1', 'b', { clusterIP: '172.30.0.42', ports: [{ name: 'p80', port: 80 }] })], []);
    expect(t.inspect.objectsOf('IPv4', other.services[0]!)).toBeNull();
  });

  it('records a refused transaction whole, with the error and the line nft named, and keeps the applied table', async () => {
    const t = setup();
    const first = t.snapshot(['10.0.1.1']);
    await t.mode.sync(first, { periodic: false, previous: null });
    const applied = t.inspect.rules()[0]!.applied!.text();
    // Someone deletes the endpoint's chain: the next partial sync flushes it and nft refuses.
    const sp = first.services[0]!.service;
    const gone = endpointNames(sp, { ip: '10.0.1.1', port: 80 }).chain;
    await t.nft.run(`flush chain ip kube-proxy ${servicePortNames(sp).service}\ndelete chain ip kube-proxy ${gone}\n`);
    t.clock.advance(5000);
    const err = await t.mode.sync(t.snapshot(['10.0.1.3']), { periodic: false, previous: first }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);

    const [rules] = t.inspect.rules();
    const refused = rules!.refused!;
    expect(refused).toMatchObject({ at: 1_005_000, full: false, input: (err as ApplyError).input, line: (err as ApplyError).line });
    expect(refused.error).toContain('No such file or directory');
    expect(refused.input).toContain('10.0.1.3');
    expect(refused.input.split('\n')[refused.line! - 1]).toBe(`flush chain ip kube-proxy ${gone}`);
    expect(rules!.applied!.text()).toBe(applied);

    // The full sync that follows succeeds; the refusal stays until a later one replaces it.
    await t.mode.sync(t.snapshot(['10.0.1.3']), { periodic: false, previous: first });
    const after = t.inspect.rules()[0]!;
    expect(after.applied!.text()).toContain('dnat to 10.0.1.3:80');
    expect(after.refused).toEqual(refused);
  });

  it.each([
    ['an NftError', nftFailure('nft -f -', { code: 1, stderr: '/dev/stdin:7:1-20: Error: Could not process rule: File exists\n' }, null), 7],
    ['an included file, as nft -i reports it', new Error('/run/kpt/sync-3.nft:12:5-9: Error: syntax error, unexpected junk'), 12],
    ['an error without a position', new Error('nft: cannot start'), null],
  ])('finds the line nft named in %s', (_what, err, line) => {
    expect(refusedLine(err)).toBe(line);
  });
});
