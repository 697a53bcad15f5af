/**
 * The proxier's health model, as upstream's ProxyHealthServer: per IP family,
 * a change queued longer than healthTimeout (2 x sync period) without a
 * successful sync since makes the node unhealthy. /healthz also needs the
 * node to be eligible (Node known, not being deleted, not tainted for
 * removal by the cluster autoscaler); /livez ignores the node.
 */
import { epochMs, type Clock } from '../../proxier/clock.ts';
import type { IPFamily, NodeInfo } from '../../proxier/types.ts';

export interface FamilyHealth {
  readonly lastUpdated: number;
  readonly healthy: boolean;
}

/**
 * Upstream's ProxyHealth, times as wall-clock milliseconds since the epoch. `healthy` is the proxiers' health alone
 * (Health()); whether /healthz answers 200 also takes `nodeEligible` (servesOK). `lastUpdated` is the newest family's
 * last sync, each family's its own; healthBody shows "now" at the top on a 200, as upstream's handlers do.
 */
export interface HealthReport {
  readonly healthy: boolean;
  readonly nodeEligible: boolean;
  readonly lastUpdated: number;
  readonly currentTime: number;
  readonly status: Readonly<Partial<Record<IPFamily, FamilyHealth>>>;
}

/** healthzHandler / livezHandler: 200 when the proxiers are healthy and, for /healthz, the node is eligible. */
export function servesOK(r: HealthReport, checkNode: boolean): boolean {
  return r.healthy && (!checkNode || r.nodeEligible);
}

export class HealthState {
  private readonly timeoutMs: number;
  private readonly clock: Pick<Clock, 'now' | 'epochMs'>;
  private readonly lastUpdated = new Map<IPFamily, number>();
  private readonly oldestQueued = new Map<IPFamily, number>();
  private nodeEligible = false;

  /** `clock`: its readings time the queued changes; the report shows them as wall-clock times (epochMs). */
  constructor(opts: { healthTimeoutMs: number; clock: Pick<Clock, 'now' | 'epochMs'>; families: readonly IPFamily[] }) {
    this.timeoutMs = opts.healthTimeoutMs;
    this.clock = opts.clock;
    // Starting up counts as healthy: upstream marks every family updated at start.
    for (const f of opts.families) this.lastUpdated.set(f, this.clock.now());
  }

  /** A change is waiting to be synced (only the oldest pending one counts). */
  queuedUpdate(family: IPFamily): void {
    if (!this.oldestQueued.has(family)) this.oldestQueued.set(family, this.clock.now());
  }

  /** A sync succeeded: everything queued before it is programmed. */
  updated(family: IPFamily): void {
    this.oldestQueued.delete(family);
    this.lastUpdated.set(family, this.clock.now());
  }

  syncNode(node: NodeInfo | null): void {
    this.nodeEligible = node !== null && node.known && !node.deleting && !node.toBeDeletedByAutoscaler;
  }

  report(): HealthReport {
    const now = this.clock.now();
    // Each reading shown once, so that "now" is one time everywhere in the report, as upstream's.
    const currentTime = epochMs(this.clock, now);
    const shown = (reading: number): number => (reading === now ? currentTime : epochMs(this.clock, reading));
    const status: Partial<Record<IPFamily, FamilyHealth>> = {};
    let healthy = true;
    let last: number | null = null;
    for (const [family, updated] of this.lastUpdated) {
      const queued = this.oldestQueued.get(family);
      const ok = queued === undefined || now - queued < this.timeoutMs;
      healthy &&= ok;
      status[family] = { lastUpdated: shown(updated), healthy: ok };
      if (last === null || updated > last) last = updated;
    }
    return { healthy, nodeEligible: this.nodeEligible, lastUpdated: last === null ? 0 : shown(last), currentTime, status };
  }
}

/**
 * The JSON body upstream serves (times as RFC 3339): a 200 shows "now" as the top-level lastUpdated (upstream keeps
 * this for compatibility with older releases, whose lastUpdated was the last sync loop run); /livez has no nodeEligible.
 */
export function healthBody(r: HealthReport, includeNode: boolean): string {
  const t = (ms: number): string => new Date(ms).toISOString();
  const status: Record<string, { lastUpdated: string; healthy: boolean }> = {};
  for (const [f, h] of Object.entries(r.status)) status[f] = { lastUpdated: t(h.lastUpdated), healthy: h.healthy };
  return JSON.stringify({
    lastUpdated: t(servesOK(r, includeNode) ? r.currentTime : r.lastUpdated),
    currentTime: t(r.currentTime),
    ...(includeNode ? { nodeEligible: r.nodeEligible } : {}),
    healthy: r.healthy,
    status,
  });
}
