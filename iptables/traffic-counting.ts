/**
 * --traffic-counters for the iptables mode: when the counters of the
 * KUBE-SEP chains are read, and what is done with a reading.
 *
 * - A full sync saves the filter and nat tables anyway (stale chains, jump
 *   rules); with counting on it saves them with -c, and that reading is taken
 *   just before the restore that rewrites every chain.
 * - A slow timer (`periodMs`) runs `iptables-save -c -t nat` per family, under
 *   the family's sync lock, so no restore runs between the save and the
 *   reading's bookkeeping. Never on a partial sync (the hot path).
 * - After each successful sync, the KUBE-SEP chains it wrote are reported as
 *   restarted (proxier/traffic-totals.ts says why). A partial sync writes a
 *   KUBE-SEP chain only when it is new or its rules changed (plan.ts compares
 *   chains), so an endpoint change does not touch the counters of the others.
 */
import type { Clock } from '../proxier/clock.ts';
import { every } from '../proxier/clock.ts';
import type { Logger } from '../proxier/log.ts';
import { loggedTrafficTotals, type TrafficTotals } from '../proxier/traffic-totals.ts';
import type { IPFamily } from '../proxier/types.ts';
import { SEP_PREFIX } from './chains.ts';
import { readEndpointCounters } from './endpoint-counters.ts';
import type { Iptables } from './iptables.ts';

export interface TrafficCountingOptions {
  /** How often the counters are read besides full syncs (--traffic-counters-period). */
  readonly periodMs: number;
  /** Most (service, endpoint) pairs exported (--traffic-counters-max-endpoints). */
  readonly maxEndpoints: number;
}

export class TrafficCounting {
  readonly totals: TrafficTotals;
  private readonly o: TrafficCountingOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;

  /** `clock`: the periodic reading's timer, and the time each reading is taken at (TrafficTotals.readAt). */
  constructor(options: TrafficCountingOptions, logger: Logger, clock: Clock) {
    this.o = options;
    this.logger = logger;
    this.clock = clock;
    this.totals = loggedTrafficTotals(options.maxEndpoints, logger);
  }

  /** A reading from iptables-save -c output (the nat table in it). */
  observe(family: IPFamily, saveText: string): void {
    const readings = readEndpointCounters(saveText).map((c) => ({ ...c, object: c.chain }));
    this.totals.observe(family, readings, this.clock.now());
  }

  /** After a successful sync: the per-service chains it wrote. */
  rewritten(family: IPFamily, chains: readonly string[]): void {
    this.totals.rewritten(
      family,
      chains.filter((c) => c.startsWith(SEP_PREFIX)),
    );
  }

  /**
   * Starts the slow timer: each family's nat table read under `exclusive` (the mode's per-family sync lock).
   * Returns a stop function.
   */
  start(iptables: ReadonlyMap<IPFamily, Iptables>, exclusive: (family: IPFamily, fn: () => Promise<void>) => Promise<void>): () => void {
    return every(this.clock, this.o.periodMs, async () => {
      for (const [family, ipt] of iptables) {
        await exclusive(family, async () => this.observe(family, await ipt.save(['nat'], { counters: true }))).catch((err: unknown) =>
          this.logger.warn({ ipFamily: family, err }, 'traffic counters: cannot read the nat table'),
        );
      }
    });
  }
}
