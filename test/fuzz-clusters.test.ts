/**
 * The cluster property (fuzz-oracle.ts) without root: random, partly
 * malformed clusters rendered by `kube-proxy-ts render`, loaded into the
 * in-memory fake iptables (which parses every rule as iptables does), read
 * back, diffed and traced. Fixed seed, bounded count; the kernel run of the
 * same property is fuzz-clusters.e2e.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { clusterArbitrary, FUZZ_NODE, type GenCluster } from './cluster-arbitrary.ts';
import {
  convergenceFailures,
  iptablesSequenceArbitrary,
  nftSequenceArbitrary,
  iptablesSequenceFailures,
  iptablesTracer,
  logFailures,
  renderCluster,
  shortReporter,
  throwIfFailed,
  traceFailures,
  userspaceSequenceFailures,
  useFuzzDir,
} from './fuzz-oracle.ts';

const SEED = 20261203;
const RUNS = 150;
const files = useFuzzDir('kpt-fuzz');

describe('random, partly malformed clusters (in-memory iptables)', () => {
  it(`render, load, diff and trace ${RUNS} clusters (seed ${SEED})`, async () => {
    const stats = { clusters: 0, loads: 0, traced: 0, logged: 0 };
    await fc.assert(
      fc.asyncProperty(clusterArbitrary, async (c) => {
        const r = await renderCluster(c, files.dir);
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

  for (const backend of ['nft', 'legacy'] as const) {
    it(`runs the mode over sequences of clusters (full, partial, restarts, split restores, a failing restore), each sync leaving exactly the render (${backend}, seed ${SEED}, 40 sequences)`, async () => {
      const stats = { syncs: 0, split: 0, failed: 0 };
      await fc.assert(
        fc.asyncProperty(iptablesSequenceArbitrary, async (seq) => {
          const { failures, injected } = await iptablesSequenceFailures((family) => new FakeIptables({ family, backend }), seq);
          stats.syncs += 2 * seq.clusters.length;
          if (seq.batchChains) stats.split++;
          stats.failed += injected;
          if (failures.length) throw new Error(failures.map((f) => f.slice(0, 1500)).join('\n'));
        }),
        { seed: SEED, numRuns: 40, endOnFailure: true, reporter: shortReporter },
      );
      console.log(
        `fuzz (iptables sequences, fake ${backend}): 40 sequences, ${stats.syncs} syncs, ${stats.split} split into restores, ${stats.failed} restores failed on purpose`,
      );
      expect(stats.failed).toBeGreaterThan(0);
    }, 60_000);
  }

  it(`runs the userspace mode over sequences of clusters (listeners, balancers, portals; restarts, a failing restore): each sync opens exactly the listeners needed and leaves exactly its portals (seed ${SEED}, 40 sequences)`, async () => {
    const stats = { syncs: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(nftSequenceArbitrary, async (seq) => {
        const { failures, injected } = await userspaceSequenceFailures((family) => new FakeIptables({ family }), seq);
        stats.syncs += 2 * seq.clusters.length;
        stats.failed += injected;
        if (failures.length) throw new Error(failures.map((f) => f.slice(0, 1500)).join('\n'));
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (userspace sequences, fake iptables): 40 sequences, ${stats.syncs} syncs, ${stats.failed} restores failed on purpose`);
    expect(stats.failed).toBeGreaterThan(0);
  }, 60_000);

  it('a Service whose name differs between two objects files only in a lone surrogate is one Service: the partial sync rewrites its chains instead of deleting them (Go encoding/json unquote)', async () => {
    // Found by the sequence property: both names hash to the same chains (their UTF-8 bytes are the same), so the
    // partial sync wrote the new Service's chains and deleted them as the old one's in one restore, which the kernel
    // refused at every sync.
    const cluster = (name: string, ip: string): GenCluster => ({
      objects: [
        makeNode(FUZZ_NODE.name, { addresses: [FUZZ_NODE.ip] }),
        makeService('ns', name, {
          clusterIPs: ['172.30.0.9'],
          type: 'NodePort',
          ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
        }),
        makeEndpointSlice('ns', name, { addressType: 'IPv4', endpoints: [{ ip }], ports: [{ name: 'http', port: 8080 }] }),
      ],
      services: [],
      loggedObjects: [],
      flags: [],
      faults: [],
    });
    const a = cluster('svc-l\udc2c', '10.244.1.2');
    const b = cluster('svc-l\udc2d', '10.244.1.3');
    for (const batchChains of [0, 2]) {
      const { failures } = await iptablesSequenceFailures((family) => new FakeIptables({ family }), { clusters: [a, b, a], batchChains, fail: null });
      expect(failures).toEqual([]);
    }
  });
});
