/**
 * The cluster property (fuzz-oracle.ts) in nftables mode without root:
 * random, partly malformed clusters with ServiceCIDRs (some touching or
 * overlapping) rendered by `kube-proxy-ts render --mode=nftables`, loaded
 * into the fake nft (the kernel's transaction rules), listed back, traced.
 * And the mode's sync path over sequences of such clusters: a full sync,
 * then partial syncs, each leaving exactly the render (nftSequenceFailures).
 * Fixed seed, bounded count; the kernel run of the same properties is
 * fuzz-nft.e2e.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeNft } from '../nftables/fake-nft.ts';
import { clusterArbitrary } from './cluster-arbitrary.ts';
import {
  fuzzServiceCIDRs,
  logFailures,
  nftSequenceFailures,
  nftSequenceArbitrary,
  nftTracer,
  renderCluster,
  shortReporter,
  throwIfFailed,
  traceFailures,
  useFuzzDir,
  unallocatedFailures,
} from './fuzz-oracle.ts';

const SEED = 20261204;
const RUNS = 100;
const files = useFuzzDir('kpt-fuzz-nft');

describe('random, partly malformed clusters in nftables mode (fake nft)', () => {
  it(`render --mode=nftables, load, list and trace ${RUNS} clusters (seed ${SEED})`, async () => {
    const stats = { clusters: 0, loads: 0, traced: 0, logged: 0 };
    await fc.assert(
      fc.asyncProperty(clusterArbitrary, async (c) => {
        const cidrs = fuzzServiceCIDRs(c);
        const r = await renderCluster(c, files.dir, { mode: 'nftables', more: cidrs.objects });
        const failures = logFailures(c, r.logs);
        for (const [family, doc] of r.docs) {
          const nft = new FakeNft();
          await nft.run(doc);
          stats.loads++;
          const live = (await nft.list(family === 'IPv4' ? 'ip' : 'ip6'))!;
          const t = traceFailures(c, family, nftTracer(live));
          failures.push(...t.failures, ...unallocatedFailures(family, cidrs.unallocated[family], nftTracer(live)));
          stats.traced += t.checks.length;
        }
        stats.clusters++;
        stats.logged += r.logs.filter((l) => l.msg.startsWith('skipped: ')).length;
        throwIfFailed(c, failures);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(
      `fuzz (nftables, fake nft): ${stats.clusters} clusters, ${stats.loads} loads, ${stats.traced} service ports traced, ${stats.logged} skip log lines`,
    );
    expect(stats.clusters).toBe(RUNS);
  }, 60_000);

  it(`runs the mode over sequences of clusters (full, partial, restarts, a refused transaction), each sync leaving exactly the render (seed ${SEED}, 40 sequences)`, async () => {
    let syncs = 0;
    let injected = 0;
    await fc.assert(
      fc.asyncProperty(nftSequenceArbitrary, async (seq) => {
        const { failures, injected: n } = await nftSequenceFailures(new FakeNft(), seq);
        injected += n;
        syncs += 2 * (seq.clusters.length + 1);
        if (failures.length) throw new Error(failures.map((f) => f.slice(0, 1500)).join('\n'));
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (nftables sequences, fake nft): 40 sequences, ${syncs} syncs, ${injected} transactions failed on purpose`);
    expect(injected).toBeGreaterThan(0);
  }, 60_000);
});
