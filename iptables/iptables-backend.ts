/**
 * The iptables mode: render -> plan -> restore -> remember, per IP family.
 *
 * A full sync (first sync, periodic resync, after any failure, after an
 * outside flush, after a node topology change) reads the live tables once to
 * find stale per-service chains and missing jump rules, and writes every
 * kube-proxy chain. A partial sync writes the top-level chains and only the
 * per-service chains whose rules changed. Everything goes through one
 * `iptables-restore --noflush --counters` per family, so it applies
 * atomically or not at all; a failure forgets what was applied and makes the
 * next sync a full one.
 */
import type { FamilySyncResult, ModeBackend, SyncContext } from '../proxier/backend.ts';
import { staleConntrackFilters } from '../proxier/conntrack-plan.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import type { Logger } from '../proxier/log.ts';
import type { Metrics } from '../src/servers/metrics.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import { canaryPresent, canaryRestoreText } from './canary.ts';
import { removeKubeProxyRules } from './cleanup.ts';
import type { Iptables } from './iptables.ts';
import { RestoreError } from './iptables.ts';
import { jumpRuleChanges, jumpRuleLines } from './jumps.ts';
import { scanSave } from './save-scan.ts';
import { planSync, type AppliedState } from './plan.ts';
import { RenderCache, renderRuleset, type RenderOptions, type RenderResult } from './render.ts';
import { countRules } from './ruleset.ts';

export interface IptablesBackendOptions {
  readonly iptables: ReadonlyMap<IPFamily, Iptables>;
  readonly render: RenderOptions;
  readonly logger: Logger;
  readonly now: () => number;
  readonly metrics?: Metrics;
  readonly conntrack?: Conntrack;
  /**
   * Split syncs that write more per-service chains than this into several
   * restores (plan.ts explains why); use it with the nft backend, whose
   * --noflush restore is quadratic in the input size. 0 = one restore.
   */
  readonly batchChains?: number;
}

/** Per-service chains per restore with the nft backend: about 170 services of 6 chains, ~30 ms of restore each. */
export const NFT_BATCH_CHAINS = 1000;

interface FamilyState {
  readonly cache: RenderCache;
  applied: AppliedState | null;
  topologyKey: string;
  lastRender: RenderResult | null;
}

export class IptablesBackend implements ModeBackend {
  readonly mode = 'iptables' as const;
  private readonly o: IptablesBackendOptions;
  private readonly families = new Map<IPFamily, FamilyState>();

  constructor(options: IptablesBackendOptions) {
    this.o = options;
  }

  /** The last rendered ruleset of a family (for diff and trace against the agent's view). */
  lastRender(family: IPFamily): RenderResult | null {
    return this.families.get(family)?.lastRender ?? null;
  }

  requestFullSync(): void {
    for (const st of this.families.values()) st.applied = null;
  }

  private state(family: IPFamily): FamilyState {
    let st = this.families.get(family);
    if (!st) {
      st = { cache: new RenderCache(), applied: null, topologyKey: '', lastRender: null };
      this.families.set(family, st);
    }
    return st;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<FamilySyncResult> {
    const family = snapshot.family;
    const ipt = this.o.iptables.get(family);
    if (!ipt) throw new Error(`no ${family} iptables configured`);
    const st = this.state(family);
    const start = this.o.now();
    // A change of the node's topology labels changes endpoint selection everywhere.
    const topologyKey = JSON.stringify([snapshot.node.zone, snapshot.node.addresses, snapshot.node.podCIDRs]);
    const full = st.applied === null || ctx.periodic || topologyKey !== st.topologyKey;
    const log = this.o.logger.child({ ipFamily: family });

    // A full sync reads the live tables; iptables-save runs while we render.
    const saving = full ? ipt.save(['filter', 'nat']) : null;
    saving?.catch(() => undefined);
    const rendered = renderRuleset(snapshot, this.o.render, st.cache);
    let existingChains: ReadonlyMap<string, readonly string[]> | undefined;
    let extraLines: Map<string, string[]> | undefined;
    if (saving) {
      const scan = scanSave(await saving, family);
      existingChains = scan.chains;
      const jumps = jumpRuleChanges(rendered.ruleset, scan.builtins);
      for (const j of jumps.stale) log.info({ table: j.table, chain: j.chain, rule: j.rule }, 'replacing an outdated kube-proxy jump rule');
      extraLines = jumpRuleLines(jumps);
    }
    const plan = planSync({
      topLevel: rendered.topLevel,
      perService: rendered.perService,
      applied: full ? null : st.applied,
      ...(existingChains ? { existingChains } : {}),
      ...(extraLines ? { extraLines } : {}),
      batchChains: this.o.batchChains ?? 0,
    });
    try {
      // Nothing changed since the last successful restore: nothing to write.
      for (const batch of plan.batches) await ipt.restore(batch, { noflush: true, counters: true });
    } catch (err) {
      st.applied = null;
      this.o.metrics?.iptablesRestoreFailuresTotal.inc({ ip_family: family });
      if (!full) this.o.metrics?.iptablesPartialRestoreFailuresTotal.inc({ ip_family: family });
      log.error(
        { err, context: err instanceof RestoreError ? err.context : undefined, full },
        'iptables-restore failed; the next sync will be a full one',
      );
      throw err;
    }
    st.applied = plan.commit(full ? null : st.applied);
    st.topologyKey = topologyKey;
    st.lastRender = rendered;
    const durationMs = this.o.now() - start;
    for (const w of rendered.warnings) log.warn(w);
    this.recordMetrics(family, rendered, plan.writtenRules, full, durationMs);
    log.debug(
      { full, chains: Object.fromEntries(plan.writtenChains), deleted: plan.deletedChains.length, bytes: plan.bytes, restores: plan.batches.length, durationMs },
      'synced iptables rules',
    );
    await this.cleanConntrack(ctx.previous, snapshot, log);
    return { family, full, durationMs };
  }

  private recordMetrics(family: IPFamily, r: RenderResult, written: ReadonlyMap<string, number>, full: boolean, ms: number): void {
    const m = this.o.metrics;
    if (!m) return;
    const labels = { ip_family: family };
    m.syncProxyRulesLatency.observe(labels, ms / 1000);
    (full ? m.syncFullProxyRulesLatency : m.syncPartialProxyRulesLatency).observe(labels, ms / 1000);
    for (const table of ['filter', 'nat']) {
      m.iptablesRulesTotal.set({ table, ip_family: family }, countRules(r.ruleset, table));
      m.iptablesRulesLast.set({ table, ip_family: family }, written.get(table) ?? 0);
    }
    m.noLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: family }, r.noLocalEndpoints.internal);
    m.noLocalEndpointsTotal.set({ traffic_policy: 'external', ip_family: family }, r.noLocalEndpoints.external);
  }

  private async cleanConntrack(previous: Snapshot | null, snapshot: Snapshot, log: Logger): Promise<void> {
    if (!this.o.conntrack) return;
    const filters = staleConntrackFilters(previous, snapshot);
    if (filters.length === 0) return;
    const { deleted, errors } = await this.o.conntrack.deleteEntries(filters);
    this.o.metrics?.conntrackDeletedEntriesTotal.inc({ ip_family: snapshot.family }, deleted);
    for (const e of errors) log.warn({ err: e }, 'conntrack cleanup failed');
    log.debug({ filters: filters.map((f) => f.reason), deleted }, 'stale UDP conntrack entries removed');
  }

  /** Creates the canary chains (call after a full sync and after a detected flush). */
  async ensureCanaries(): Promise<void> {
    for (const ipt of this.o.iptables.values()) await ipt.restore(canaryRestoreText(), { noflush: true, counters: false });
  }

  /** True when some family's canary chain has disappeared (tables were flushed from outside). */
  async canaryMissing(): Promise<boolean> {
    for (const ipt of this.o.iptables.values()) {
      try {
        if (!canaryPresent(await ipt.save(['mangle']))) return true;
      } catch {
        // Like upstream, a failure to look (lock contention) counts as "still there".
      }
    }
    return false;
  }

  async cleanup(): Promise<void> {
    for (const ipt of this.o.iptables.values()) await removeKubeProxyRules(ipt);
    this.requestFullSync();
  }

  async close(): Promise<void> {}
}
