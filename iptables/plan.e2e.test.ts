/**
 * Batched syncs against the real kernel: a large full sync split into
 * several restores loads into a fresh namespace in order (no jump to a chain
 * that does not exist yet) and ends exactly at the desired ruleset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServicePortState, Snapshot } from '../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { diffRulesets } from './diff.ts';
import { parseSave } from './parse-save.ts';
import { planSync } from './plan.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset } from './render.ts';
import { createIptables } from './restore.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = 'kptplan-node';

function snapshot(n: number, shift = 0): Snapshot {
  const services: ServicePortState[] = [];
  for (let i = 0; i < n; i++) {
    const sp = servicePort({
      key: `ns/svc${i}:p80`,
      namespace: 'ns',
      name: `svc${i}`,
      clusterIP: `172.30.${i >> 8}.${i & 255}`,
      nodePort: i % 3 === 0 ? 30000 + i : 0,
      sessionAffinityTimeout: i % 5 === 0 ? 60 : 0,
    });
    services.push(
      portState(
        sp,
        [1, 2, 3].map((j) => endpoint(`10.${i >> 8}.${i & 255}.${j + shift}`, { port: 8080 })),
      ),
    );
  }
  return snapshotOf(services);
}

describe('batched full syncs in the kernel', () => {
  beforeAll(async () => {
    await net.sweepNamespaces('kptplan');
    await net.addNamespace(NS);
  });
  afterAll(async () => net.deleteNamespace(NS));

  for (const backend of ['nft', 'legacy'] as const) {
    it(`loads a 300-service full sync in batches with the ${backend} backend and converges`, async () => {
      const ipt = createIptables({ family: 'IPv4', backend, runner: createExecaRunner({ netns: NS }) });
      const r1 = renderRuleset(snapshot(300), DEFAULT_RENDER_OPTIONS);
      const desired = r1.ruleset;
      const plan = planSync({ topLevel: r1.topLevel, perService: r1.perService, applied: null, batchChains: 200 });
      expect(plan.batches.length).toBeGreaterThan(5);
      for (const b of plan.batches) await ipt.restore(b, { noflush: true, counters: false });
      const live = parseSave(await ipt.save(['filter', 'nat']), 'IPv4');
      expect(diffRulesets(desired, live).groups.filter((g) => g.title !== 'jump rules')).toEqual([]);

      // A second full sync with changed endpoints replaces them and deletes the stale endpoint chains.
      const r2 = renderRuleset(snapshot(300, 10), DEFAULT_RENDER_OPTIONS);
      const next = r2.ruleset;
      const existing = new Map(live.tables.map((t) => [t.name, t.chains.map((c) => c.name)]));
      const plan2 = planSync({ topLevel: r2.topLevel, perService: r2.perService, applied: null, existingChains: existing, batchChains: 200 });
      expect(plan2.deletedChains.length).toBe(900);
      for (const b of plan2.batches) await ipt.restore(b, { noflush: true, counters: false });
      const live2 = parseSave(await ipt.save(['filter', 'nat']), 'IPv4');
      expect(diffRulesets(next, live2).groups.filter((g) => g.title !== 'jump rules')).toEqual([]);
      await runner.run(`iptables-${backend}-restore`, [], { input: '*filter\nCOMMIT\n*nat\nCOMMIT\n', netns: NS });
    });
  }
});
