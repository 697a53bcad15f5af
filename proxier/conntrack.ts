/**
 * The conntrack seam the modes use: delete UDP conntrack entries, given
 * filters computed by conntrack-plan.ts. createConntrack implements it with
 * the conntrack tool through the command runner; "0 flow entries have been
 * deleted" (exit 1) is not an error.
 */
import { conntrackArgs, type ConntrackFilter } from './conntrack-plan.ts';
import type { CommandRunner } from './exec.ts';

export interface Conntrack {
  /** Deletes matching entries; returns how many were deleted and the failures (never throws). */
  deleteEntries(filters: readonly ConntrackFilter[]): Promise<{ deleted: number; errors: string[] }>;
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
  };
}
