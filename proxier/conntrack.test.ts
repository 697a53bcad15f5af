/**
 * reconcileAfterSync's report, which the metrics read (upstream's conntrack.CleanStaleEntries: it observes
 * ReconcileConntrackFlowsLatency and adds to ReconcileConntrackFlowsDeletedEntriesTotal after every reconcile, and
 * returns before either when the entries cannot be listed).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.ts';
import { reconcileAfterSync, type Conntrack } from './conntrack.ts';
import { silentLogger } from './log.ts';
import type { SyncFailure } from './mode.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';

const dns = snapshotOf([
  portState(servicePort({ key: 'ns/dns:dns', namespace: 'ns', name: 'dns', portName: 'dns', protocol: 'UDP', clusterIP: '172.30.0.10', port: 53 }), [
    endpoint('10.244.1.5', { port: 5353 }),
  ]),
]);

function conntrack(list: () => Promise<never[]>): Conntrack {
  return { listEntries: list, deleteEntries: () => Promise.resolve({ deleted: 0, errors: [] }) };
}

describe('reconcileAfterSync (conntrack.CleanStaleEntries)', () => {
  it('reports the duration of a reconcile that deleted nothing, so its count (0) and latency are recorded', async () => {
    const failures: SyncFailure[] = [];
    const r = await reconcileAfterSync(
      conntrack(() => Promise.resolve([])),
      new ManualClock(0),
      {
        previous: null,
        snapshot: dns,
        log: silentLogger(),
        failures,
      },
    );
    expect(r).toEqual({ conntrackDeleted: 0, conntrackReconcileMs: 0 });
  });

  it('reports no duration when the entries could not be listed (CleanStaleEntries returns before its metrics)', async () => {
    const failures: SyncFailure[] = [];
    const r = await reconcileAfterSync(
      conntrack(() => Promise.reject(new Error('conntrack: Operation not permitted'))),
      new ManualClock(0),
      {
        previous: null,
        snapshot: dns,
        log: silentLogger(),
        failures,
      },
    );
    expect(r).toEqual({ conntrackDeleted: 0 });
    expect(failures).toEqual([{ stage: 'conntrack', message: 'conntrack: Operation not permitted' }]);
  });
});
