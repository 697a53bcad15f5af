/**
 * How the agent tells operators about outside changes to its rules (OutsideChange, from a mode's monitor or a
 * periodic sync). Every one is counted; the first of each family and kind is a warning, and so is one every quiet
 * period after it, saying how many came since; those in between are info lines.
 *
 * Upstream only notices a flush (its canary) and logs it at V(2). Kube-proxy-ts notices more, within a sync
 * period, so a fight with another writer shows up every period: a kubelet older than 1.24 re-adding its
 * KUBE-FIREWALL rule, a configuration tool restoring a saved ruleset, a firewall reloading. That is one warning
 * per quiet period here, not one per sync period, and a metric to alert on.
 */
import type { Clock } from './clock.ts';
import type { Logger } from './log.ts';
import type { OutsideChange } from './mode.ts';

/** At most one warning per family and kind in this long (10 minutes). */
export const OUTSIDE_CHANGE_QUIET_MS = 10 * 60_000;

export interface OutsideChangeReporterDeps {
  readonly clock: Pick<Clock, 'now'>;
  readonly logger: Logger;
  /** Called for every change (the agent's kubeproxy_ts_outside_changes_total). */
  readonly count?: (change: OutsideChange) => void;
  readonly quietMs?: number;
}

export function outsideChangeReporter(d: OutsideChangeReporterDeps): (change: OutsideChange) => void {
  const quietMs = d.quietMs ?? OUTSIDE_CHANGE_QUIET_MS;
  const seen = new Map<string, { warnedAt: number; since: number }>();
  return (change) => {
    d.count?.(change);
    const key = `${change.family}/${change.kind}`;
    const now = d.clock.now();
    const fields = { ipFamily: change.family, outsideChange: change.kind, ...change.fields };
    const last = seen.get(key);
    if (last && now - last.warnedAt < quietMs) {
      last.since++;
      d.logger.info(fields, `${change.message} (again: ${last.since} since the last warning)`);
      return;
    }
    const again = last && last.since > 0 ? ` (and ${last.since} more times in the ${Math.round((now - last.warnedAt) / 60_000)} minutes before)` : '';
    seen.set(key, { warnedAt: now, since: 0 });
    d.logger.warn(fields, change.message + again);
  };
}
