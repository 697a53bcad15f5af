/**
 * Generation B tables (upstream v1.36+) against the real nft 1.0.6 and kernel,
 * each test in a network namespace of its own (needs root): every rule shape
 * passes `nft --check` and loads, in both families, with masquerade-all and
 * with --traffic-counters; a full sync over the loaded table and partial syncs
 * (a local endpoint leaving and coming back, a service going) apply on top.
 * The listing is read as nft prints it here; diff-generation-b.e2e.test.ts
 * compares B tables through the JSON reader and the diff.
 */
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../proxier/exec.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { planFullSync } from './full-sync.ts';
import { nftNamespaces } from './nft-namespace.case.ts';
import { planPartialSync } from './partial-sync.ts';
import { renderNftables, type NftRenderOptions } from './render.ts';
import { firstLocalEndpoint, shapesOptions, shapesSnapshot, withoutEndpoint } from './shapes.case.ts';

const inNamespace = nftNamespaces('kptgenb');

const listing = async (exec: CommandRunner, family: IPFamily): Promise<string> =>
  (await exec.run('nft', ['list', 'table', family === 'IPv4' ? 'ip' : 'ip6', 'kube-proxy'])).stdout;

const B = (family: IPFamily, over: Partial<NftRenderOptions> = {}): NftRenderOptions => ({ ...shapesOptions(family), generation: 'B', ...over });

const COUNTERS = { trafficCounters: true };

describe('generation B tables in the kernel', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const [what, over] of [
      ['', {}],
      [' with masquerade-all', { masqueradeAll: true }],
      [' with --traffic-counters', COUNTERS],
    ] as const) {
      it(`every ${family} rule shape${what} passes nft --check and loads; a full sync over it and partial syncs apply`, async () => {
        await inNamespace(async (nft, exec) => {
          const snapshot = shapesSnapshot(family);
          const render = renderNftables(snapshot, B(family, over));
          const full = planFullSync(render, { now: 0, live: null, recreateBaseChains: true });
          await nft.check(full.text);
          await nft.run(full.text);
          const text = await listing(exec, family);
          expect(text).not.toContain('mark-for-masquerade');
          expect(text).toContain('hairpin-connections');
          // nft lists `dnat ip addr . port to` as `dnat ip to`; --traffic-counters keeps endpoint chains (no map).
          if (over !== COUNTERS) expect(text).toMatch(/meta l4proto tcp dnat ip6? to numgen random mod \d+ map \{ 0 : /);
          else expect(text).toMatch(/counter name "endpoint-[^"]+" dnat to/);
          expect(text).toContain('meta mark set meta mark | 0x00004000');
          await nft.run(full.text);

          // The first service port with a local endpoint loses it (its hairpin element goes), then gets it back;
          // then every service port goes.
          const { index: i, endpoint: gone } = firstLocalEndpoint(snapshot);
          const fewer: Snapshot = withoutEndpoint(snapshot, i, gone);
          const none: Snapshot = { ...snapshot, services: [] };
          // The last sync has nothing to write but deletes the chains the one before flushed.
          const steps = [fewer, snapshot, none, none];
          let applied = full.next;
          let now = 5000;
          for (const step of steps) {
            const plan = planPartialSync(renderNftables(step, B(family, over)), applied, now);
            if (plan.text !== '') await nft.run(plan.text);
            if (plan.cleanup !== '') await nft.run(plan.cleanup);
            applied = plan.next;
            now += 15_000;
          }
          const after = await listing(exec, family);
          expect(after).not.toMatch(/chain [^ ]*\/[^ ]* {/); // per-service chains all hold a "/"
        });
      });
    }
  }
});
