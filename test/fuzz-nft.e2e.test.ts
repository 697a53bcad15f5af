/**
 * The nftables cluster property (fuzz-oracle.ts, as fuzz-nft.test.ts) in the
 * kernel: random, partly malformed clusters with ServiceCIDRs rendered by
 * `kube-proxy-ts render --mode=nftables` and loaded with the real `nft -f`
 * into a network namespace of this test's own (both families, tables
 * deleted between clusters). Per cluster: the kernel takes every
 * transaction, the table `nft -j list` prints back equals what the fake nft
 * holds after the same transaction, skipped objects are named, and a packet
 * to each port of each Service that must be programmed, traced over the
 * kernel's listing, reaches only its endpoints or is rejected; an
 * unallocated address of the ServiceCIDRs is dropped.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffTables, isEmptyDiff } from '../nftables/diff.ts';
import { FakeNft } from '../nftables/fake-nft.ts';
import { Nft } from '../nftables/nft.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { clusterArbitrary } from './cluster-arbitrary.ts';
import { fuzzServiceCIDRs, logFailures, nftTracer, renderCluster, shortReporter, traceFailures, unallocatedFailures } from './fuzz-oracle.ts';

const SEED = 20261204;
const RUNS = 40;
const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = `kptfuzznft-${process.pid}`;
let dir: string;

beforeAll(async () => {
  await net.sweepNamespaces('kptfuzznft');
  await net.addNamespace(NS);
  dir = await mkdtemp(join(tmpdir(), 'kpt-fuzz-nft-'));
});

afterAll(async () => {
  await net.deleteNamespace(NS).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('random, partly malformed clusters in nftables mode (kernel)', () => {
  it(`render --mode=nftables and load ${RUNS} clusters (seed ${SEED}): the kernel takes them, lists back what the fake holds, traffic as traced`, async () => {
    const inNs = createExecaRunner({ netns: NS });
    const nft = new Nft(inNs);
    const stats = { clusters: 0, loads: 0, traced: 0, reached: 0 };
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(clusterArbitrary, async (c) => {
        const cidrs = fuzzServiceCIDRs(c);
        const r = await renderCluster(c, dir, { mode: 'nftables', more: cidrs.objects });
        const failures = logFailures(c, r.logs);
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
          if (!isEmptyDiff(d)) failures.push(`${family}: the kernel lists what the fake does not hold: ${JSON.stringify(d).slice(0, 2000)}`);
          const t = traceFailures(c, family, nftTracer(live));
          failures.push(...t.failures, ...unallocatedFailures(family, cidrs.unallocated[family], nftTracer(live)));
          stats.traced += t.checks.length;
          stats.reached += t.checks.filter((x) => x.reached.length > 0).length;
        }
        stats.clusters++;
        if (failures.length)
          throw new Error(`faults ${JSON.stringify(c.faults)} flags ${JSON.stringify(c.flags)}:\n${failures.map((f) => f.slice(0, 600)).join('\n')}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(
      `fuzz (nftables, kernel): ${stats.clusters} clusters, ${stats.loads} kernel loads, ${stats.traced} service ports traced ` +
        `(${stats.reached} reaching endpoints), ${Date.now() - t0} ms`,
    );
    expect(stats.clusters).toBe(RUNS);
  }, 300_000);
});
