import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { clusterArbitrary, FUZZ_NODE } from '../test/cluster-arbitrary.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset, renderRulesetStreamed, type RenderOptions } from './render.ts';
import { toRestoreText, writeRulesetText, type RestoreTextOptions } from './restore-text.ts';

type Json = Record<string, unknown>;

const options: RenderOptions = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/48'], bridgeInterface: '', interfaceNamePrefix: '' },
};

function snapshotsOf(objects: readonly unknown[]) {
  const all = objects as readonly Json[];
  return buildSnapshots(
    {
      services: all.filter((o) => o?.['kind'] === 'Service'),
      slices: all.filter((o) => o?.['kind'] === 'EndpointSlice'),
      node: all.find((o) => o?.['kind'] === 'Node') ?? null,
    },
    { nodeName: FUZZ_NODE.name, features: { preferSameTrafficDistribution: true }, families: ['IPv4', 'IPv6'] },
  ).snapshots;
}

describe('renderRulesetStreamed', () => {
  it('writes exactly the text of the whole ruleset, in chunks, for any cluster (what `render` prints)', () => {
    fc.assert(
      fc.property(
        clusterArbitrary,
        fc.constantFrom<RestoreTextOptions['builtins']>('insert', 'skip'),
        fc.integer({ min: 1, max: 300 }),
        (c, builtins, largeClusterThreshold) => {
          for (const snapshot of snapshotsOf(c.objects)) {
            const opts = { ...options, largeClusterThreshold };
            const whole = renderRuleset(snapshot, opts);
            const streamed = renderRulesetStreamed(snapshot, opts);
            const chunks: string[] = [];
            writeRulesetText(streamed.topLevel, { builtins }, (chunk) => chunks.push(chunk), streamed.streamed);
            expect(chunks.join('')).toBe(toRestoreText(whole.ruleset, { builtins }));
            expect(streamed.warnings).toEqual(whole.warnings);
            expect(streamed.largeClusterMode).toBe(whole.largeClusterMode);
            expect(streamed.localDetector.description).toBe(whole.localDetector.description);
          }
        },
      ),
      { numRuns: 150, seed: 13 },
    );
  });

  it('declares the per-service chains in the order their rules are built and written', () => {
    const objects = fc.sample(clusterArbitrary, { numRuns: 20, seed: 7 }).find((c) => snapshotsOf(c.objects)[0]!.services.length > 0)!.objects;
    const streamed = renderRulesetStreamed(snapshotsOf(objects)[0]!, options);
    const nat = streamed.streamed.get('nat')!;
    const declared = [...nat.names()];
    const groups = [...nat.chains()];
    expect(groups.flat().map((c) => c.name)).toEqual(declared);
  });
});
