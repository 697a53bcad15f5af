/**
 * What the nftables mode keeps per service port, measured in a child process
 * (test/retention-cluster.ts: the heap after full collections, before and
 * after, the measured objects kept alive) on 2,000 service ports of 5
 * endpoints each:
 * the render the render cache keeps between syncs, and what a cold start's
 * plan holds beyond it while its chunks are written. At 10,000 service ports
 * every 1 KB per port here is 10 MB of the agent's resident memory.
 */
import { describe, expect, it } from 'vitest';
import { measureInChild } from '../test/retention-cluster.ts';

describe('nftables mode memory per service port', () => {
  let measured: Promise<{ ports: number; render: number; coldStart: number }> | null = null;
  const measure = () =>
    (measured ??= measureInChild(
      2000,
      [`import { NftRenderCache, renderNftables } from 'nftables/render.ts';`, `import { planColdStart } from 'nftables/cold-start.ts';`],
      `const snapshot = buildSnapshot();
const detectLocal = { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' };
const before = heap();
const render = renderNftables(snapshot, { masqueradeBit: 14, masqueradeAll: false, detectLocal, nodePortAddresses: [] }, new NftRenderCache());
const rendered = heap();
const plan = planColdStart(render);
const chunks = plan.more[Symbol.iterator]();
const chunk = chunks.next().value;
const planned = heap();
const ports = render.services.length;
console.log(JSON.stringify({ ports, render: (rendered - before) / ports, coldStart: (planned - rendered - chunk.length) / ports }));`,
    ));

  it('the render keeps a 5-endpoint service port in under 2.9 KB: flat strings, each chain one text, lists at their size (was ~5.6, then ~3.5 KB)', async () => {
    const { ports, render } = await measure();
    expect(ports).toBe(2000);
    // Measured on Node 24: ~5,630 bytes with V8's cons strings and push()-grown arrays, ~3,490 without, ~2,450 with
    // each chain's rules one text instead of an array of strings (nftables/packed-chain.ts).
    expect(render).toBeLessThan(2900);
  }, 60_000);

  it('a cold start holds under 400 bytes per port beyond the render while it writes its chunks: the applied state only (was ~850)', async () => {
    const { coldStart } = await measure();
    // Measured on Node 24: ~850 bytes with a map of every element key to the port that wins it, ~190 without.
    expect(coldStart).toBeLessThan(400);
  }, 60_000);
});
