/**
 * The cluster property (fuzz-oracle.ts) without root: random, partly
 * malformed clusters rendered by `kube-proxy-ts render`, loaded into the
 * in-memory fake iptables (which parses every rule as iptables does), read
 * back, diffed and traced. Fixed seed, bounded count; the kernel run of the
 * same property is fuzz-clusters.e2e.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { clusterArbitrary } from './cluster-arbitrary.ts';
import { convergenceFailures, iptablesTracer, logFailures, renderCluster, shortReporter, throwIfFailed, traceFailures } from './fuzz-oracle.ts';

const SEED = 20261203;
const RUNS = 150;
let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'kpt-fuzz-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('random, partly malformed clusters (in-memory iptables)', () => {
  it(`render, load, diff and trace ${RUNS} clusters (seed ${SEED})`, async () => {
    const stats = { clusters: 0, loads: 0, traced: 0, logged: 0 };
    await fc.assert(
      fc.asyncProperty(clusterArbitrary, async (c) => {
        const r = await renderCluster(c, dir);
        const failures = logFailures(c, r.logs);
        for (const [family, doc] of r.docs) {
          const ipt = new FakeIptables({ family });
          await ipt.restore(doc, { noflush: true, counters: false });
          stats.loads++;
          const saved = await ipt.save(['filter', 'nat']);
          failures.push(...convergenceFailures(doc, family, saved));
          const t = traceFailures(c, family, iptablesTracer(parseSave(saved, family)));
          failures.push(...t.failures);
          stats.traced += t.checks.length;
        }
        stats.clusters++;
        stats.logged += r.logs.filter((l) => l.msg.startsWith('skipped: ')).length;
        throwIfFailed(c, failures);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(
      `fuzz (in-memory): ${stats.clusters} clusters, ${stats.loads} loads, ${stats.traced} service ports traced, ${stats.logged} skip log lines`,
    );
    expect(stats.clusters).toBe(RUNS);
  }, 60_000);
});
