/**
 * The one apply path of the iptables-based modes (iptables-mode.ts and
 * userspace/userspace-mode.ts). A full sync reads the live filter and nat
 * tables once: their chain names (so that stale per-service chains can be
 * deleted) and their built-in chains (missing jump rules are inserted and
 * outdated ones replaced, in the same restore as everything else). Then the
 * restore inputs go in order with --noflush, each one atomic. A refused input
 * rejects with an ApplyError (carrying that input and the line) after
 * logging the lines around the one iptables-restore named; the caller then
 * forgets what it had applied, so that its next sync is a full one.
 */
import type { Logger } from '../proxier/log.ts';
import { ApplyError } from '../proxier/mode.ts';
import { RestoreError, type Iptables } from './iptables.ts';
import { jumpRuleChanges, jumpRuleLines } from './jumps.ts';
import { scanSave } from './parse-save.ts';
import type { Ruleset } from './ruleset.ts';

/** What a full sync found in the kernel. */
export interface LiveTables {
  /** Chain names per table, as iptables-save lists them. */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Per table, the -D and -I edits that leave the built-in chains holding exactly the desired jumps. */
  readonly jumpEdits: ReadonlyMap<string, readonly string[]>;
}

export interface ApplyRequest<P extends { readonly batches: Iterable<string> }> {
  readonly iptables: Iptables;
  readonly full: boolean;
  /** The desired ruleset; its built-in chains hold the jump rules. */
  readonly desired: Ruleset;
  /** --counters: keep the counters written in the input. */
  readonly counters: boolean;
  readonly logger: Logger;
  /** A full sync's iptables-save of filter and nat, begun early (readLiveTables); read here when absent. */
  readonly saving?: Promise<string> | null;
  /** The restore inputs (`batches`, applied in order, each one let go once restored), given what a full sync found (null on a partial one). */
  plan(live: LiveTables | null): P;
}

/** Starts a full sync's iptables-save (with -c when `counters`) so that it runs while the caller renders. */
export function readLiveTables(ipt: Iptables, opts: { counters?: boolean } = {}): Promise<string> {
  const saving = ipt.save(['filter', 'nat'], { counters: opts.counters === true });
  saving.catch(() => undefined);
  return saving;
}

/** Reads the live tables when the sync is full, plans, and restores the plan's inputs; returns the plan. */
export async function applyRules<P extends { readonly batches: Iterable<string> }>(req: ApplyRequest<P>): Promise<P> {
  const ipt = req.iptables;
  let live: LiveTables | null = null;
  if (req.full) {
    const scan = scanSave(await (req.saving ?? readLiveTables(ipt)), ipt.family);
    const jumps = jumpRuleChanges(req.desired, scan.builtins);
    for (const j of jumps.stale) req.logger.info({ table: j.table, chain: j.chain, rule: j.rule }, 'replacing an outdated kube-proxy jump rule');
    live = { chains: scan.chains, jumpEdits: jumpRuleLines(jumps) };
  }
  const plan = req.plan(live);
  let current = '';
  try {
    for (const batch of plan.batches) {
      current = batch;
      await ipt.restore(batch, { noflush: true, counters: req.counters });
    }
  } catch (err) {
    // Upstream's words (proxier.go syncProxyRules), which troubleshooting guides grep for; the next sync is full.
    req.logger.error(
      { err, context: err instanceof RestoreError ? err.context : undefined, full: req.full, next: 'full sync' },
      'Failed to execute iptables-restore',
    );
    throw new ApplyError(ipt.family, req.full, err, { input: current, line: err instanceof RestoreError ? err.line : null });
  }
  return plan;
}
