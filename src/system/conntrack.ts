/**
 * Conntrack seam: delete UDP conntrack entries with the conntrack tool, given
 * filters computed by proxier/conntrack-plan.ts. "0 flow entries have been
 * deleted" (exit 1) is not an error.
 */
import { conntrackArgs, type ConntrackFilter } from '../../proxier/conntrack-plan.ts';
import type { CommandRunner } from './exec.ts';

export interface Conntrack {
  /** Deletes matching entries; returns how many were deleted and the failures (never throws). */
  deleteEntries(filters: readonly ConntrackFilter[]): Promise<{ deleted: number; errors: string[] }>;
}

export function createConntrack(opts: { runner: CommandRunner; netns?: string; binary?: string }): Conntrack {
  const bin = opts.binary ?? 'conntrack';
  return {
    async deleteEntries(filters) {
      let deleted = 0;
      const errors: string[] = [];
      for (const f of filters) {
        const args = conntrackArgs(f);
        try {
          const r = await opts.runner.run(bin, args, { timeoutMs: 10_000, ...(opts.netns ? { netns: opts.netns } : {}) });
          const n = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
          if (r.code === 0 || (r.code === 1 && n)) deleted += Number(n?.[1] ?? 0);
          else errors.push(`${bin} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
        } catch (err) {
          errors.push(`${bin} ${args.join(' ')}: ${(err as Error).message}`);
        }
      }
      return { deleted, errors };
    },
  };
}
