/**
 * The nftables cluster property (fuzz-oracle.ts, as fuzz-nft.test.ts) in the
 * kernel: random, partly malformed clusters with ServiceCIDRs rendered by
 * `kube-proxy-ts render --mode=nftables` and loaded with the real `nft -f`
 * into node-1 of a namespace cluster (both families, tables deleted between
 * clusters). Per cluster: the kernel takes every transaction, the table
 * `nft -j list` prints back equals what the fake nft holds after the same
 * transaction, skipped objects are named, and a packet to each port of each
 * Service that must be programmed, traced over the kernel's listing,
 * reaches only its endpoints or is rejected; an unallocated address of the
 * ServiceCIDRs is dropped; for every fourth cluster a real TCP request from
 * the outside client agrees with the trace. And the mode's sync path over
 * sequences of such clusters (a full sync, then partial syncs) in the
 * kernel, each leaving exactly the render (nftSequenceFailures).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffTables, isEmptyDiff } from '../nftables/diff.ts';
import { FakeNft } from '../nftables/fake-nft.ts';
import { Nft } from '../nftables/nft.ts';
import { clusterArbitrary } from './cluster-arbitrary.ts';
import {
  diffSummary,
  fuzzServiceCIDRs,
  logFailures,
  nftSequenceFailures,
  nftSequenceArbitrary,
  nftTracer,
  renderCluster,
  shortReporter,
  useFuzzCluster,
  traceFailures,
  unallocatedFailures,
  type TraceCheck,
  finishKernelCluster,
} from './fuzz-oracle.ts';

const SEED = 20261204;
const RUNS = 40;
const fuzz = useFuzzCluster('kptfuzznft');

describe('random, partly malformed clusters in nftables mode (kernel)', () => {
  it(`render --mode=nftables and load ${RUNS} clusters (seed ${SEED}): the kernel takes them, lists back what the fake holds, traffic as traced`, async () => {
    const inNs = fuzz.cluster.runnerIn(fuzz.cluster.node('node-1').ns);
    const nft = new Nft(inNs);
    const stats = { clusters: 0, loads: 0, traced: 0, reached: 0, realPackets: 0 };
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(clusterArbitrary, async (c) => {
        const cidrs = fuzzServiceCIDRs(c);
        const r = await renderCluster(c, fuzz.dir, { mode: 'nftables', more: cidrs.objects });
        const failures = logFailures(c, r.logs);
        const checks: TraceCheck[] = [];
        for (const family of ['ip', 'ip6']) await inNs.run('nft', ['delete', 'table', family, 'kube-proxy']);
        for (const [family, doc] of r.docs) {
          const fam = family === 'IPv4' ? 'ip' : 'ip6';
          try {
            await nft.run(doc);
          } catch (err) {
            throw new Error(`the kernel refused the ${family} transaction (faults ${JSON.stringify(c.faults)}): ${(err as Error).message}`);
          }
          stats.loads++;
          const live = (await nft.list(fam))!;
          const fake = new FakeNft();
          await fake.run(doc);
          const d = diffTables((await fake.list(fam))!, live);
          if (!isEmptyDiff(d)) failures.push(`${family}: the kernel lists what the fake does not hold:\n  ${diffSummary(d)}`);
          const t = traceFailures(c, family, nftTracer(live));
          failures.push(...t.failures, ...unallocatedFailures(family, cidrs.unallocated[family], nftTracer(live)));
          checks.push(...t.checks);
        }
        await finishKernelCluster(fuzz.cluster, c, checks, failures, stats);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(
      `fuzz (nftables, kernel): ${stats.clusters} clusters, ${stats.loads} kernel loads, ${stats.traced} service ports traced ` +
        `(${stats.reached} reaching endpoints), ${stats.realPackets} real packets, ${Date.now() - t0} ms`,
    );
    expect(stats.clusters).toBe(RUNS);
  }, 300_000);

  it(`runs the mode over 15 sequences of clusters in the kernel (full, partial, restarts, a refused transaction), each sync leaving exactly the render (seed ${SEED})`, async () => {
    const inNs = fuzz.cluster.runnerIn(fuzz.cluster.node('node-1').ns);
    const nft = new Nft(inNs);
    let syncs = 0;
    let injected = 0;
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(nftSequenceArbitrary, async (seq) => {
        for (const family of ['ip', 'ip6']) await inNs.run('nft', ['delete', 'table', family, 'kube-proxy']);
        const { failures, injected: n } = await nftSequenceFailures(nft, seq);
        injected += n;
        syncs += 2 * (seq.clusters.length + 1);
        if (failures.length) throw new Error(failures.map((f) => f.slice(0, 1500)).join('\n'));
      }),
      { seed: SEED, numRuns: 15, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (nftables sequences, kernel): 15 sequences, ${syncs} syncs, ${injected} transactions failed on purpose, ${Date.now() - t0} ms`);
  }, 300_000);
});
