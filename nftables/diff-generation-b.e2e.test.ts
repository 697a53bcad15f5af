/**
 * `diff --mode=nftables` over a generation B table (upstream v1.36+) in the
 * kernel, each test in a network namespace of its own (needs root): the B
 * render of every rule shape, loaded by nft 1.0.6, reads back from
 * `nft -j list table` as converged (both families, masquerade-all,
 * --traffic-counters); and what an outside hand changes in B's own objects
 * (a hairpin-connections element, a policy chain's DNAT map, a masquerading
 * rule) is reported, under the service port or the fixed objects it belongs to.
 */
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../proxier/exec.ts';
import type { IPFamily } from '../proxier/types.ts';
import { FIXED_GROUP, formatNftDiff, reportTableDiff } from './diff-report.ts';
import { planFullSync } from './full-sync.ts';
import { nftNamespaces } from './nft-namespace.case.ts';
import { renderNftables, tableOf, type NftRenderOptions } from './render.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';

const inNamespace = nftNamespaces('kptgbdiff');

const B = (family: IPFamily, over: Partial<NftRenderOptions> = {}): NftRenderOptions => ({ ...shapesOptions(family), generation: 'B', ...over });
const nftFamily = (family: IPFamily) => (family === 'IPv4' ? 'ip' : 'ip6');

async function nftOk(exec: CommandRunner, args: string[]): Promise<string> {
  const r = await exec.run('nft', args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** The handle nft gives the rule of `chain` whose listed text contains `text` (`nft -a list chain`). */
async function handleOf(exec: CommandRunner, family: IPFamily, chain: string, text: string): Promise<string> {
  const out = await nftOk(exec, ['-a', 'list', 'chain', nftFamily(family), 'kube-proxy', chain]);
  const line = out.split('\n').find((l) => l.includes(text));
  const handle = /# handle (\d+)$/.exec(line ?? '')?.[1];
  if (handle === undefined) throw new Error(`no rule with ${JSON.stringify(text)} in ${chain}:\n${out}`);
  return handle;
}

describe('diff --mode=nftables over a generation B table in the kernel', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const [what, over] of [
      ['', {}],
      [' with masquerade-all', { masqueradeAll: true }],
      [' with --traffic-counters', { trafficCounters: true }],
    ] as const) {
      it(`finds the ${family} B table${what} loaded from its own render converged`, async () => {
        await inNamespace(async (nft) => {
          const render = renderNftables(shapesSnapshot(family), B(family, over));
          await nft.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
          const report = reportTableDiff(render, await nft.list(nftFamily(family)));
          expect(report.identical, formatNftDiff(report, family)).toBe(true);
          expect(formatNftDiff(report, family)).toMatch(/^IPv[46]: converged: /);
        });
      });
    }

    it(`reports a missing ${family} hairpin-connections element, an altered DNAT map and a missing masquerading rule`, async () => {
      await inNamespace(async (nft, exec) => {
        const snapshot = shapesSnapshot(family);
        const render = renderNftables(snapshot, B(family));
        await nft.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
        const desired = tableOf(render);
        const f = nftFamily(family);
        const ep = (n: number) => (family === 'IPv4' ? `10.180.0.${n}` : `fd00:10:180::${n}`);
        // ns1/itp (iTP Local) has one local endpoint, ep(7): its hairpin element and its policy chain's one-entry map.
        const itp = render.services.find((s) => s.key === 'ns1/itp:p80/TCP')!;
        const policy = itp.chains.find((c) => c.name.startsWith('local-'))!.name;
        const hairpin = `${ep(7)} . ${ep(7)} . tcp . 80`;
        expect(desired.sets.find((s) => s.name === 'hairpin-connections')!.elements!.map((e) => e.key)).toContain(hairpin);

        await nftOk(exec, ['delete', 'element', f, 'kube-proxy', 'hairpin-connections', `{ ${hairpin} }`]);
        const dnat = await handleOf(exec, family, policy, 'numgen random mod 1 map');
        await nftOk(exec, [
          'replace',
          'rule',
          f,
          'kube-proxy',
          policy,
          'handle',
          dnat,
          `meta l4proto tcp dnat ${f} addr . port to numgen random mod 1 map { 0 : ${ep(8)} . 80 }`,
        ]);
        await nftOk(exec, [
          'delete',
          'rule',
          f,
          'kube-proxy',
          'masquerading',
          'handle',
          await handleOf(exec, family, 'masquerading', '@hairpin-connections'),
        ]);

        const report = reportTableDiff(render, await nft.list(f));
        expect(report.identical).toBe(false);
        const ipX = family === 'IPv4' ? 'ip' : 'ip6';
        expect(report.groups).toEqual([
          {
            title: 'ns1/itp:p80/TCP',
            changes: [
              {
                kind: 'chain',
                name: policy,
                what: '1 missing, 1 unexpected rules',
                lines: [
                  `+ meta l4proto tcp dnat ${ipX} to numgen random mod 1 map { 0 : ${ep(7)} . 80 }`,
                  `- meta l4proto tcp dnat ${ipX} to numgen random mod 1 map { 0 : ${ep(8)} . 80 }`,
                ],
              },
              { kind: 'set', name: 'hairpin-connections', what: '1 missing, 0 unexpected, 0 changed elements', lines: [`+ ${hairpin}`] },
            ],
          },
          {
            title: FIXED_GROUP,
            changes: [
              {
                kind: 'chain',
                name: 'masquerading',
                what: '1 missing, 0 unexpected rules',
                lines: [`+ ct status dnat ${ipX} saddr . ${ipX} daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random`],
              },
            ],
          },
        ]);
      });
    });
  }
});
