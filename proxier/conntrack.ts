/**
 * The conntrack seam the modes use: list a family's UDP conntrack entries and
 * delete entries given filters computed by conntrack-plan.ts.
 * createConntrack implements it with the conntrack tool through the command
 * runner; "0 flow entries have been deleted" (exit 1) is not an error.
 * reconcileAfterSync (over reconcileConntrack) is the iptables and nftables
 * modes' step after a sync.
 */
import {
  conntrackArgs,
  conntrackReconcileNeeded,
  parseConntrackList,
  staleConntrackFilters,
  type ConntrackEntry,
  type ConntrackFilter,
} from './conntrack-plan.ts';
import type { Clock } from './clock.ts';
import type { CommandRunner } from './exec.ts';
import type { Logger } from './log.ts';
import type { SyncFailure, SyncReport } from './mode.ts';
import type { IPFamily, Snapshot } from './types.ts';

export interface Conntrack {
  /** Deletes matching entries; returns how many were deleted and the failures (never throws). */
  deleteEntries(filters: readonly ConntrackFilter[]): Promise<{ deleted: number; errors: string[] }>;
  /** The family's UDP entries; throws when they cannot be listed. */
  listEntries(family: IPFamily): Promise<ConntrackEntry[]>;
}

export interface ReconcileResult {
  /** Whether the entries were looked at (the sync changed a UDP service port, or was the first). */
  readonly ran: boolean;
  /** Whether they could be listed (upstream's CleanStaleEntries records its metrics only then). */
  readonly listed: boolean;
  readonly deleted: number;
  /** The deletions made, with their reasons (for logs). */
  readonly filters: readonly ConntrackFilter[];
  readonly errors: readonly string[];
}

/**
 * Upstream's conntrack reconciler after a sync from `prev` to `next` (conntrack-plan.ts): list the family's UDP
 * entries, delete the stale ones. Never throws; what failed is in `errors`.
 */
export async function reconcileConntrack(conntrack: Conntrack, prev: Snapshot | null, next: Snapshot): Promise<ReconcileResult> {
  if (!conntrackReconcileNeeded(prev, next)) return { ran: false, listed: false, deleted: 0, filters: [], errors: [] };
  let entries: ConntrackEntry[];
  try {
    entries = await conntrack.listEntries(next.family);
  } catch (err) {
    return { ran: true, listed: false, deleted: 0, filters: [], errors: [(err as Error).message] };
  }
  const filters = staleConntrackFilters(entries, next);
  if (filters.length === 0) return { ran: true, listed: true, deleted: 0, filters, errors: [] };
  const { deleted, errors } = await conntrack.deleteEntries(filters);
  return { ran: true, listed: true, deleted, filters, errors };
}

/**
 * The iptables and nftables modes' step after a successful sync: the reconciler, its failures logged and added to
 * `failures` (stage conntrack), and the report's conntrack fields (the duration only when it ran and could list the
 * entries: the metrics then record its duration and its deletions, none included, as upstream's).
 */
export async function reconcileAfterSync(
  conntrack: Conntrack | undefined,
  clock: Clock,
  sync: { readonly previous: Snapshot | null; readonly snapshot: Snapshot; readonly log: Logger; readonly failures: SyncFailure[] },
): Promise<Pick<SyncReport, 'conntrackDeleted' | 'conntrackReconcileMs'>> {
  if (!conntrack) return { conntrackDeleted: 0 };
  const start = clock.now();
  const r = await reconcileConntrack(conntrack, sync.previous, sync.snapshot);
  for (const e of r.errors) {
    sync.log.warn({ err: e }, 'conntrack cleanup failed');
    sync.failures.push({ stage: 'conntrack', message: e });
  }
  if (r.filters.length > 0) sync.log.debug({ filters: r.filters.map((f) => f.reason), deleted: r.deleted }, 'stale UDP conntrack entries removed');
  return r.listed ? { conntrackDeleted: r.deleted, conntrackReconcileMs: clock.now() - start } : { conntrackDeleted: r.deleted };
}

export function createConntrack(opts: { runner: CommandRunner; binary?: string }): Conntrack {
  const bin = opts.binary ?? 'conntrack';
  return {
    async deleteEntries(filters) {
      let deleted = 0;
      const errors: string[] = [];
      for (const f of filters) {
        const args = conntrackArgs(f);
        try {
          const r = await opts.runner.run(bin, args, { timeoutMs: 10_000 });
          const n = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
          if (r.code === 0 || (r.code === 1 && n)) deleted += Number(n?.[1] ?? 0);
          else errors.push(`${bin} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
        } catch (err) {
          errors.push(`${bin} ${args.join(' ')}: ${(err as Error).message}`);
        }
      }
      return { deleted, errors };
    },
    async listEntries(family) {
      const args = ['-L', '-p', 'udp', ...(family === 'IPv6' ? ['-f', 'ipv6'] : [])];
      const r = await opts.runner.run(bin, args, { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
      return parseConntrackList(r.stdout);
    },
  };
}
