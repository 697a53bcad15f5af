/**
 * Monotonic per-endpoint traffic totals from kernel counters that restart.
 *
 * A mode reads the counters its rules keep (iptables: the DNAT rule of each
 * KUBE-SEP chain) now and then and hands every reading of a family to
 * observe(). The kernel restarts a rule's counters from zero whenever a sync
 * writes its chain again, so after each successful sync the mode names the
 * objects it rewrote (rewritten()); the next reading then counts their whole
 * value as new, where otherwise it counts the growth since the last reading.
 * A counter found lower than last time is taken as restarted too (a rewrite
 * nobody reported, e.g. by a restore that failed half-way). What a rewritten
 * chain counted between the last reading and its rewrite is lost: modes read
 * just before the syncs that rewrite many chains (full syncs) to keep that
 * small.
 *
 * Totals are kept per (service, endpoint) pair, at most `maxEndpoints` of
 * them (the label cardinality of the metrics): pairs beyond the cap are not
 * counted, and onCap reports when that starts and ends. A pair whose objects
 * are gone from the kernel is dropped (its series ends; should it return, it
 * starts again from zero, which Prometheus reads as a counter reset).
 *
 * Pure: no I/O, no clock (the caller passes each reading's time; loggedTrafficTotals reports its cap through the
 * logger it is given).
 */
import type { Logger } from './log.ts';
import type { IPFamily } from './types.ts';

/** One counted object (a chain, a rule) of one endpoint of one service port, as the kernel holds it now. */
export interface CounterReading {
  /** The mode's name of the counted object (iptables: the KUBE-SEP chain). */
  readonly object: string;
  /** The service port ("ns/name:port"); "" when the rules do not name it. */
  readonly service: string;
  /** "ip:port" ("[ip]:port" for IPv6). */
  readonly endpoint: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface EndpointTraffic {
  readonly service: string;
  readonly endpoint: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface TrafficTotalsOptions {
  /** Most (service, endpoint) pairs counted. */
  readonly maxEndpoints: number;
  /** Called with the number of pairs left out when the cap starts to bite, and with 0 when it no longer does. */
  readonly onCap?: (leftOut: number, max: number) => void;
}

interface Seen {
  packets: number;
  bytes: number;
  /** A sync rewrote the object since this reading: its counters restarted from zero. */
  restarted: boolean;
}

interface Total {
  packets: number;
  bytes: number;
}

const labelKey = (service: string, endpoint: string): string => `${service}\u0000${endpoint}`;

export class TrafficTotals {
  private readonly o: TrafficTotalsOptions;
  /** family -> object -> last reading. */
  private readonly seen = new Map<IPFamily, Map<string, Seen>>();
  /** family -> label keys its last reading held. */
  private readonly labelsOf = new Map<IPFamily, Set<string>>();
  private readonly totals = new Map<string, Total & { readonly service: string; readonly endpoint: string }>();
  /** family -> pairs its last reading left out. */
  private readonly leftOut = new Map<IPFamily, number>();
  /** family -> when its last reading was taken (the caller's clock). */
  private readonly readAtOf = new Map<IPFamily, number>();

  constructor(options: TrafficTotalsOptions) {
    this.o = options;
  }

  /** Every counted object of one family as the kernel holds it now, read at `at` (a reading of the caller's clock). */
  observe(family: IPFamily, readings: readonly CounterReading[], at: number): void {
    const before = this.seen.get(family) ?? new Map<string, Seen>();
    const now = new Map<string, Seen>();
    const labels = new Set<string>();
    let leftOut = 0;
    for (const r of readings) {
      const key = labelKey(r.service, r.endpoint);
      let total = this.totals.get(key);
      if (!total) {
        if (this.totals.size >= this.o.maxEndpoints) {
          leftOut++;
          continue;
        }
        total = { service: r.service, endpoint: r.endpoint, packets: 0, bytes: 0 };
        this.totals.set(key, total);
      }
      labels.add(key);
      const last = before.get(r.object);
      const restarted = !last || last.restarted || r.packets < last.packets || r.bytes < last.bytes;
      total.packets += restarted ? r.packets : r.packets - last.packets;
      total.bytes += restarted ? r.bytes : r.bytes - last.bytes;
      now.set(r.object, { packets: r.packets, bytes: r.bytes, restarted: false });
    }
    this.seen.set(family, now);
    this.labelsOf.set(family, labels);
    this.readAtOf.set(family, at);
    this.dropGone();
    this.cap(family, leftOut);
  }

  /** When the family's counters were last read (the `at` of its last observe), or null: not read yet. */
  readAt(family: IPFamily): number | null {
    return this.readAtOf.get(family) ?? null;
  }

  /** Objects of a family that a successful sync wrote again (their counters restarted from zero). */
  rewritten(family: IPFamily, objects: Iterable<string>): void {
    const seen = this.seen.get(family);
    if (!seen) return;
    for (const o of objects) {
      const s = seen.get(o);
      if (s) s.restarted = true;
    }
  }

  /** Forgets a family (its mode no longer counts it). */
  forget(family: IPFamily): void {
    this.seen.delete(family);
    this.labelsOf.delete(family);
    this.readAtOf.delete(family);
    this.dropGone();
    this.cap(family, 0);
  }

  /** The totals, sorted by service and endpoint. */
  list(): EndpointTraffic[] {
    return [...this.totals.values()]
      .map(({ service, endpoint, packets, bytes }) => ({ service, endpoint, packets, bytes }))
      .sort(byServiceAndEndpoint);
  }

  private dropGone(): void {
    const live = new Set<string>();
    for (const labels of this.labelsOf.values()) for (const k of labels) live.add(k);
    for (const k of this.totals.keys()) if (!live.has(k)) this.totals.delete(k);
  }

  private cap(family: IPFamily, leftOut: number): void {
    const sum = (): number => [...this.leftOut.values()].reduce((a, b) => a + b, 0);
    const before = sum();
    this.leftOut.set(family, leftOut);
    const after = sum();
    if (before > 0 !== after > 0) this.o.onCap?.(after, this.o.maxEndpoints);
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The order of list() (and of /debug/traffic): by service, then endpoint. */
export const byServiceAndEndpoint = (a: EndpointTraffic, b: EndpointTraffic): number =>
  a.service === b.service ? cmp(a.endpoint, b.endpoint) : cmp(a.service, b.service);

/** Totals whose cap is reported as both modes report it: a warning naming the flag when it bites, a line when it no longer does. */
export function loggedTrafficTotals(maxEndpoints: number, logger: Logger): TrafficTotals {
  return new TrafficTotals({
    maxEndpoints,
    onCap: (leftOut, max) =>
      leftOut > 0
        ? logger.warn(
            { leftOut, max },
            `traffic counters: more endpoints than --traffic-counters-max-endpoints=${max}; ${leftOut} endpoint(s) not exported`,
          )
        : logger.info({ max }, 'traffic counters: every endpoint exported again'),
  });
}
