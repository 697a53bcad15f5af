/**
 * The cluster property (fuzz-oracle.ts) in the kernel: random, partly
 * malformed clusters (cluster-arbitrary.ts; fixed seed, bounded count)
 * rendered by `kube-proxy-ts render` and loaded with the real
 * iptables-restore into node-1 of a namespace cluster, nft and legacy
 * backends, IPv4 and IPv6, one node per backend run, tables flushed between
 * cases. Per cluster: zero kernel rejections, zero exceptions, every skipped
 * object named in a log line, the kernel's own iptables-save output diffs
 * converged, a packet to each port of each Service that must be programmed
 * reaches only its endpoints or is rejected (traced over that output), and
 * for every fourth cluster a real TCP request from the outside client to a
 * Service whose endpoints are pods agrees with the trace. And the iptables
 * mode itself over sequences of such clusters (iptablesSequenceFailures):
 * partial syncs, restarts, split restores and a restore refused mid-sync,
 * each sync leaving exactly the render in the kernel; and the userspace mode
 * over the same sequences, its portal rules in the kernel
 * (userspaceSequenceFailures).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Iptables, IptablesBackend } from '../iptables/iptables.ts';
import { RestoreError } from '../iptables/iptables.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { createIptables } from '../iptables/restore.ts';
import { clusterArbitrary } from './cluster-arbitrary.ts';
import {
  convergenceFailures,
  iptablesSequenceArbitrary,
  iptablesSequenceFailures,
  iptablesTracer,
  logFailures,
  nftSequenceArbitrary,
  userspaceSequenceFailures,
  useFuzzCluster,
  renderCluster,
  shortReporter,
  traceFailures,
  type TraceCheck,
  finishKernelCluster,
  type ModeSequence,
} from './fuzz-oracle.ts';

const SEED = 20261203;
const RUNS = 40;
const SEQUENCES = 15;
const RESET =
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';

const fuzz = useFuzzCluster('kptfuzz');

/** A mode's sequence property over node-1's tables of one backend (both families reset before each sequence), its counts printed. */
async function kernelSequences<S extends ModeSequence>(
  mode: string,
  backend: IptablesBackend,
  arbitrary: fc.Arbitrary<S>,
  failuresOf: (iptablesOf: (family: 'IPv4' | 'IPv6') => Iptables, seq: S) => Promise<{ failures: string[]; injected: number }>,
): Promise<void> {
  const runner = fuzz.cluster.runnerIn(fuzz.cluster.node('node-1').ns);
  const ipt = {
    IPv4: createIptables({ family: 'IPv4', backend, runner }),
    IPv6: createIptables({ family: 'IPv6', backend, runner }),
  };
  const stats = { syncs: 0, failed: 0 };
  const t0 = Date.now();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (seq) => {
      for (const family of ['IPv4', 'IPv6'] as const) await ipt[family].restore(RESET, { noflush: false, counters: false });
      const { failures, injected } = await failuresOf((family) => ipt[family], seq);
      stats.syncs += 2 * seq.clusters.length;
      stats.failed += injected;
      if (failures.length) throw new Error(failures.map((f) => f.slice(0, 1500)).join('\n'));
    }),
    { seed: SEED, numRuns: SEQUENCES, endOnFailure: true, reporter: shortReporter },
  );
  console.log(
    `fuzz (${mode} sequences, kernel ${backend}): ${SEQUENCES} sequences, ${stats.syncs} syncs, ${stats.failed} restores failed on purpose, ${Date.now() - t0} ms`,
  );
}

for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
  describe(`random, partly malformed clusters in the kernel (${backend})`, () => {
    it(`render and load ${RUNS} clusters (seed ${SEED}): no rejection, skips named, converged, traffic as traced`, async () => {
      const node = fuzz.cluster.node('node-1').ns;
      const ipt = {
        IPv4: createIptables({ family: 'IPv4', backend, runner: fuzz.cluster.runnerIn(node) }),
        IPv6: createIptables({ family: 'IPv6', backend, runner: fuzz.cluster.runnerIn(node) }),
      };
      for (const b of ['nft', 'legacy'] as const) {
        for (const f of ['IPv4', 'IPv6'] as const)
          await createIptables({ family: f, backend: b, runner: fuzz.cluster.runnerIn(node) }).restore(RESET, { noflush: false, counters: false });
      }
      const stats = { clusters: 0, loads: 0, traced: 0, reached: 0, skipLines: 0, realPackets: 0 };
      const t0 = Date.now();
      await fc.assert(
        fc.asyncProperty(clusterArbitrary, async (c) => {
          const r = await renderCluster(c, fuzz.dir);
          const failures = logFailures(c, r.logs);
          const checks: TraceCheck[] = [];
          for (const family of ['IPv4', 'IPv6'] as const) await ipt[family].restore(RESET, { noflush: false, counters: false });
          for (const [family, doc] of r.docs) {
            try {
              await ipt[family].restore(doc, { noflush: true, counters: false });
            } catch (err) {
              if (err instanceof RestoreError)
                throw new Error(`the kernel rejected the ${family} ruleset (faults ${JSON.stringify(c.faults)}): ${err.message}\n${err.context}`);
              throw err;
            }
            stats.loads++;
            const saved = await ipt[family].save(['filter', 'nat']);
            failures.push(...convergenceFailures(doc, family, saved));
            const t = traceFailures(c, family, iptablesTracer(parseSave(saved, family)));
            failures.push(...t.failures);
            checks.push(...t.checks);
          }
          stats.skipLines += r.logs.filter((l) => l.msg.startsWith('skipped: ')).length;
          await finishKernelCluster(fuzz.cluster, c, checks, failures, stats);
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
      );
      console.log(
        `fuzz (kernel, ${backend}): ${stats.clusters} clusters, ${stats.loads} kernel loads, ${stats.traced} service ports traced ` +
          `(${stats.reached} reaching endpoints), ${stats.realPackets} real packets, ${stats.skipLines} skip log lines, ${Date.now() - t0} ms`,
      );
      expect(stats.clusters).toBe(RUNS);
      expect(stats.realPackets).toBeGreaterThan(0);
      expect(stats.reached).toBeGreaterThan(0);
    });

    it(`runs the mode over ${SEQUENCES} sequences of clusters in the kernel (full, partial, restarts, split restores, a failing restore), each sync leaving exactly the render (seed ${SEED})`, async () => {
      await kernelSequences('iptables', backend, iptablesSequenceArbitrary, iptablesSequenceFailures);
    }, 300_000);

    it(`runs the userspace mode over ${SEQUENCES} sequences of clusters, its portals in the kernel (listeners recorded, not opened): each sync leaves exactly its portals (seed ${SEED})`, async () => {
      await kernelSequences('userspace', backend, nftSequenceArbitrary, userspaceSequenceFailures);
    }, 300_000);
  });
}
