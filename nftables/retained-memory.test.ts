/**
 * What the nftables mode keeps per service port, measured in a child process
 * with --expose-gc (the heap after full collections, before and after, the
 * measured objects kept alive) on 2,000 service ports of 5 endpoints each:
 * the render the render cache keeps between syncs, and what a cold start's
 * plan holds beyond it while its chunks are written. At 10,000 service ports
 * every 1 KB per port here is 10 MB of the agent's resident memory.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const url = (path: string) => new URL(path, import.meta.url).href;

const SCRIPT = `
import { buildSnapshots } from ${JSON.stringify(url('../proxier/snapshot.ts'))};
import { makeEndpointSlice, makeNode, makeService } from ${JSON.stringify(url('../test/builders.ts'))};
import { NftRenderCache, renderNftables } from ${JSON.stringify(url('./render.ts'))};
import { planColdStart } from ${JSON.stringify(url('./cold-start.ts'))};
const n = 2000;
const services = [], slices = [];
for (let i = 0; i < n; i++) {
  const ip = (j) => '10.' + ((i >> 8) & 255) + '.' + (i & 255) + '.' + j;
  services.push(makeService('ns', 'svc-' + i, { clusterIP: '172.20.' + ((i >> 8) & 255) + '.' + (i & 255), ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }));
  slices.push(makeEndpointSlice('ns', 'svc-' + i, 'svc-' + i + '-s', {
    endpoints: [1, 2, 3, 4, 5].map((j) => ({ ip: ip(j), nodeName: j === 1 ? 'node' : 'other' })),
    ports: [{ name: 'p80', port: 8080 }],
  }));
}
const snapshot = buildSnapshots({ services, slices, node: makeNode('node', { addresses: ['192.168.0.2'] }) },
  { nodeName: 'node', families: ['IPv4'], features: { preferSameTrafficDistribution: true } }).snapshots[0];
const detectLocal = { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' };
// The least of three readings, each after a full collection and a pause: under load the collector's background
// threads can lag behind it, and one reading in a full suite run once came out ~1 MB high.
const heap = async () => {
  let least = Infinity;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    least = Math.min(least, process.memoryUsage().heapUsed);
  }
  return least;
};
const before = await heap();
const render = renderNftables(snapshot, { masqueradeBit: 14, masqueradeAll: false, detectLocal, nodePortAddresses: [] }, new NftRenderCache());
const rendered = await heap();
const plan = planColdStart(render);
const chunks = plan.more[Symbol.iterator]();
const chunk = chunks.next().value;
const planned = await heap();
const ports = render.services.length;
console.log(JSON.stringify({ ports, render: (rendered - before) / ports, coldStart: (planned - rendered - chunk.length) / ports }));
`;

describe('nftables mode memory per service port', () => {
  let measured: Promise<{ ports: number; render: number; coldStart: number }> | null = null;
  const measure = () =>
    (measured ??= promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', SCRIPT], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    }).then(({ stdout }) => JSON.parse(stdout)));

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
