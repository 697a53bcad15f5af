/**
 * The iptables mode: render -> plan -> restore -> remember, per IP family,
 * and the canary that notices an outside flush.
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
import type { Clock } from '../proxier/clock.ts';
import { every } from '../proxier/clock.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import { staleConntrackFilters } from '../proxier/conntrack-plan.ts';
import { writeProcFile, type CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { ProxyMode, SyncContext, SyncFailure, SyncReport } from '../proxier/mode.ts';
import type { IPFamily, Snapshot } from '../proxier/types.ts';
import { applyRules, readLiveTables } from './apply.ts';
import { canaryPresent, canaryRestoreText } from './canary.ts';
import type { Iptables } from './iptables.ts';
import { planSync, type AppliedState } from './plan.ts';
import { RenderCache, renderRuleset, type RenderOptions, type RenderResult } from './render.ts';
import { countRules } from './ruleset.ts';

export interface IptablesModeOptions {
  /** The iptables of each family this node has (the families the mode programs). */
  readonly iptables: ReadonlyMap<IPFamily, Iptables>;
  readonly render: RenderOptions;
  /**
   * Split syncs that write more per-service chains than this into several
   * restores (plan.ts explains why); use it with the nft backend, whose
   * --noflush restore is quadratic in the input size. 0 = one restore.
   */
  readonly batchChains?: number;
  /** How often monitor() looks for the canary (--iptables-sync-period). */
  readonly canaryPeriodMs?: number;
}

export interface IptablesModeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly conntrack?: Conntrack;
  /** Sets net.ipv4.conf.all.route_localnet for localhost NodePorts (left alone without one). */
  readonly runner?: CommandRunner;
}

/** Per-service chains per restore with the nft backend: about 170 services of 6 chains, ~30 ms of restore each. */
export const NFT_BATCH_CHAINS = 1000;

const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/all/route_localnet';

interface FamilyState {
  readonly cache: RenderCache;
  applied: AppliedState | null;
  topologyKey: string;
  lastRender: RenderResult | null;
}

export class IptablesMode implements ProxyMode {
  readonly name = 'iptables' as const;
  readonly families: readonly IPFamily[];
  private readonly o: IptablesModeOptions;
  private readonly d: IptablesModeDeps;
  private readonly state = new Map<IPFamily, FamilyState>();
  private localnetChecked = false;
  /** Set by monitor(): canaries are made after the first full sync from then on. */
  private watching = false;
  private fullSyncDone = false;
  private canariesMade = false;

  constructor(options: IptablesModeOptions, deps: IptablesModeDeps) {
    this.o = options;
    this.d = deps;
    this.families = [...options.iptables.keys()];
  }

  /** The last rendered ruleset of a family (what the kernel should hold: tests compare it with the fake's state). */
  lastRender(family: IPFamily): RenderResult | null {
    return this.state.get(family)?.lastRender ?? null;
  }

  requestFullSync(): void {
    for (const st of this.state.values()) st.applied = null;
  }

  private familyState(family: IPFamily): FamilyState {
    let st = this.state.get(family);
    if (!st) {
      st = { cache: new RenderCache(), applied: null, topologyKey: '', lastRender: null };
      this.state.set(family, st);
    }
    return st;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const family = snapshot.family;
    const ipt = this.o.iptables.get(family);
    if (!ipt) throw new Error(`no ${family} iptables configured`);
    const st = this.familyState(family);
    const start = this.d.clock.now();
    // A change of the node's topology labels changes endpoint selection everywhere.
    const topologyKey = JSON.stringify([snapshot.node.zone, snapshot.node.addresses, snapshot.node.podCIDRs]);
    const full = st.applied === null || ctx.periodic || topologyKey !== st.topologyKey;
    const log = this.d.logger.child({ ipFamily: family });
    if (family === 'IPv4') await this.setRouteLocalnet();

    // A full sync reads the live tables; iptables-save runs while we render.
    const saving = full ? readLiveTables(ipt) : null;
    const rendered = renderRuleset(snapshot, this.o.render, st.cache);
    // Nothing changed since the last successful restore: no batch, nothing written.
    const plan = await applyRules({
      iptables: ipt,
      full,
      desired: rendered.ruleset,
      counters: true,
      logger: log,
      saving,
      plan: (live) =>
        planSync({
          topLevel: rendered.topLevel,
          perService: rendered.perService,
          applied: full ? null : st.applied,
          ...(live ? { existingChains: live.chains, edits: live.jumpEdits } : {}),
          batchChains: this.o.batchChains ?? 0,
        }),
    }).catch((err: unknown) => {
      st.applied = null;
      throw err;
    });
    st.applied = plan.commit(full ? null : st.applied);
    st.topologyKey = topologyKey;
    st.lastRender = rendered;
    const durationMs = this.d.clock.now() - start;
    for (const w of rendered.warnings) log.warn(w);
    log.debug(
      {
        full,
        chains: Object.fromEntries(plan.writtenChains),
        deleted: plan.deletedChains.length,
        bytes: plan.bytes,
        restores: plan.batches.length,
        durationMs,
      },
      'synced iptables rules',
    );
    if (full) this.afterFullSync();
    const failures: SyncFailure[] = [];
    const conntrackDeleted = await this.cleanConntrack(ctx.previous, snapshot, log, failures);
    return {
      family,
      full,
      durationMs,
      objects: new Map(['filter', 'nat'].map((table) => [table, countRules(rendered.ruleset, table)])),
      written: new Map(['filter', 'nat'].map((table) => [table, plan.writtenRules.get(table) ?? 0])),
      bytes: plan.bytes,
      noLocalEndpoints: rendered.noLocalEndpoints,
      conntrackDeleted,
      failures,
    };
  }

  /** Localhost NodePorts need route_localnet (IPv4 only); set once, before the first IPv4 rules. */
  private async setRouteLocalnet(): Promise<void> {
    if (this.localnetChecked || !this.o.render.localhostNodePorts || !this.d.runner) return;
    this.localnetChecked = true;
    if (!(await writeProcFile(this.d.runner, ROUTE_LOCALNET, '1'))) {
      this.d.logger.warn('cannot set net.ipv4.conf.all.route_localnet=1: NodePorts on 127.0.0.1 will not work');
    }
  }

  private async cleanConntrack(previous: Snapshot | null, snapshot: Snapshot, log: Logger, failures: SyncFailure[]): Promise<number> {
    if (!this.d.conntrack) return 0;
    const filters = staleConntrackFilters(previous, snapshot);
    if (filters.length === 0) return 0;
    const { deleted, errors } = await this.d.conntrack.deleteEntries(filters);
    for (const e of errors) {
      log.warn({ err: e }, 'conntrack cleanup failed');
      failures.push({ stage: 'conntrack', message: e });
    }
    log.debug({ filters: filters.map((f) => f.reason), deleted }, 'stale UDP conntrack entries removed');
    return deleted;
  }

  private afterFullSync(): void {
    this.fullSyncDone = true;
    if (this.watching && !this.canariesMade) this.makeCanaries('cannot create canary chains');
  }

  private makeCanaries(failure: string): void {
    this.canariesMade = true;
    void this.ensureCanaries().catch((err: unknown) => this.d.logger.warn({ err }, failure));
  }

  /** Creates the canary chains (monitor() does this after the first full sync and after a detected flush). */
  async ensureCanaries(): Promise<void> {
    for (const ipt of this.o.iptables.values()) await ipt.restore(canaryRestoreText(), { noflush: true, counters: false });
  }

  /** True when some family's canary chain has disappeared (tables were flushed from outside). */
  async canaryMissing(): Promise<boolean> {
    for (const ipt of this.o.iptables.values()) {
      try {
        if (!canaryPresent(await ipt.save(['mangle']), ipt.family)) return true;
      } catch {
        // Like upstream, a failure to look (lock contention) counts as "still there".
      }
    }
    return false;
  }

  /**
   * An outside flush of the tables (firewalld reload, iptables -F) removes the
   * canary: every sync period, look for it; when it is gone, recreate it and
   * rewrite everything.
   */
  monitor(resync: () => void): () => void {
    this.watching = true;
    if (this.fullSyncDone && !this.canariesMade) this.makeCanaries('cannot create canary chains');
    return every(this.d.clock, this.o.canaryPeriodMs ?? 30_000, async () => {
      if (this.canariesMade && (await this.canaryMissing())) {
        this.d.logger.warn('canary chain KUBE-PROXY-CANARY is gone: the tables were flushed from outside; resyncing everything');
        await this.ensureCanaries().catch((err: unknown) => this.d.logger.warn({ err }, 'cannot recreate canary chains'));
        resync();
      }
    });
  }

  async close(): Promise<void> {}
}
