/**
 * The iptables mode: render -> plan -> restore -> remember, per IP family,
 * and the canary that notices an outside flush.
 *
 * A full sync (first sync, hourly as upstream's FullSyncPeriod but not in
 * large-cluster mode, after any failure, after an outside flush or change,
 * after a node topology change)
 * reads the live tables once to find stale per-service chains and missing
 * jump rules, and writes every kube-proxy chain. A partial sync writes the
 * top-level chains and only the per-service chains whose rules changed. The
 * periodic sync reads the tables too and is partial unless they show an
 * outside change (drift.ts), which makes it full. Everything goes through one
 * `iptables-restore --noflush --counters` per family, so it applies
 * atomically or not at all; a failure forgets what was applied and makes the
 * next sync a full one.
 *
 * For operators (`inspect`): the applied and refused rules per family, each
 * service port's chains, and, with --traffic-counters, the traffic per
 * endpoint read from the KUBE-SEP counters (traffic-counting.ts); a sync and
 * a counter reading of one family never overlap.
 */
import type { Clock } from '../proxier/clock.ts';
import { every } from '../proxier/clock.ts';
import { reconcileAfterSync, type Conntrack } from '../proxier/conntrack.ts';
import { readProcFile, writeProcFileError, type CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import {
  ApplyError,
  FULL_SYNC_PERIOD_MS,
  type ModeInspection,
  type OutsideChange,
  type ProxyMode,
  type ServiceObjects,
  type SyncContext,
  type SyncFailure,
  type SyncReport,
} from '../proxier/mode.ts';
import { RulesRecord, type AppliedRules } from '../proxier/rules-record.ts';
import { endpointString, type IPFamily, type ServicePortState, type Snapshot } from '../proxier/types.ts';
import { applyRules, readLiveTables } from './apply.ts';
import { canaryPresent, canaryRestoreText } from './canary.ts';
import { findDrift } from './drift.ts';
import { endpointChainName } from './chain-names.ts';
import { SEP_PREFIX } from './chains.ts';
import type { Iptables } from './iptables.ts';
import { ensureCounters, NFACCT_COUNTERS, probeNfacctMatch, type Nfacct } from './nfacct.ts';
import { scanSave } from './parse-save.ts';
import { ruleCount } from '../proxier/packed-rules.ts';
import { planSync, type AppliedState } from './plan.ts';
import { RenderCache, renderRuleset, type RenderOptions, type RenderResult } from './render.ts';
import type { ServiceRender } from './render-service.ts';
import { toRestoreText } from './restore-text.ts';
import { countRules } from './ruleset.ts';
import { TrafficCounting, type TrafficCountingOptions } from './traffic-counting.ts';

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
  /** Count traffic per endpoint from the KUBE-SEP counters (--traffic-counters); off when absent. */
  readonly trafficCounters?: TrafficCountingOptions;
}

export interface IptablesModeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly conntrack?: Conntrack;
  /** Sets net.ipv4.conf.all.route_localnet for localhost NodePorts (left alone without one). */
  readonly runner?: CommandRunner;
  /**
   * The node's nfacct counters (nfacct.ts): made on every full sync, as upstream does, and counted into by the
   * INVALID drop and the localhost NodePort rules; without it the rules count into none.
   */
  readonly nfacct?: Nfacct;
  /**
   * Told when a sync has rendered and when it has planned (its restore texts
   * built), before the first restore: benches time the phases of a sync with it.
   */
  readonly onPhase?: (phase: SyncPhase) => void;
}

/** The steps of a sync before its restores, as IptablesModeDeps.onPhase reports them. */
export type SyncPhase = 'rendered' | 'planned';

/** Per-service chains per restore with the nft backend: about 170 services of 6 chains, ~30 ms of restore each. */
export const NFT_BATCH_CHAINS = 1000;

/** Localhost NodePorts need it (upstream sets it in NewProxier, and with --init-only). */
const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/all/route_localnet';

/**
 * route_localnet=1, written only when it is not (upstream EnsureSysctl): an agent whose /proc/sys is read-only,
 * after an init container ran --init-only, finds it set and has nothing to say. `error` says why it could not be set.
 */
export async function ensureRouteLocalnet(runner: CommandRunner): Promise<{ written: boolean; error: string | null }> {
  if ((await readProcFile(runner, ROUTE_LOCALNET)) === '1') return { written: false, error: null };
  const error = await writeProcFileError(runner, ROUTE_LOCALNET, '1');
  return { written: error === null, error };
}

interface FamilyState {
  readonly cache: RenderCache;
  applied: AppliedState | null;
  /** When the last full sync started (clock ms). */
  lastFullAt: number;
  topologyKey: string;
  lastRender: RenderResult | null;
  /** lastRender's per-service renders by service port key and protocol, built when asked. */
  byKey: Map<string, ServiceRender> | null;
  /** The last sync or counter reading of the family: the next one waits for it. */
  busy: Promise<unknown>;
}

/**
 * What /debug/rules shows of a successful sync. Built outside syncFamily on
 * purpose: a closure made there would keep syncFamily's whole context alive
 * until the next sync, and with it the plan and its restore texts (~17 MB
 * after a full sync at 10,000 services).
 */
function appliedRules(at: number, full: boolean, bytes: number, rendered: RenderResult): AppliedRules {
  return { at, full, bytes, text: () => toRestoreText(rendered.ruleset, { builtins: 'insert' }) };
}

/** Nat rules per service render; the render cache hands out the same object for an unchanged service, so each is counted once. */
const natRuleCounts = new WeakMap<ServiceRender, number>();

/** Rules per table of a render, counted without building its whole nat table (RenderResult.ruleset). */
function ruleCounts(rendered: RenderResult): Map<string, number> {
  let perService = 0;
  for (const { render } of rendered.perService) {
    let count = natRuleCounts.get(render);
    if (count === undefined) {
      count = 0;
      for (const c of render.natChains) count += ruleCount(c);
      natRuleCounts.set(render, count);
    }
    perService += count;
  }
  return new Map([
    ['filter', countRules(rendered.topLevel, 'filter')],
    ['nat', countRules(rendered.topLevel, 'nat') + perService],
  ]);
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
  private readonly record: RulesRecord;
  private readonly counting: TrafficCounting | null;
  /** The nfacct counters that existed at the last full sync: the rules count into these. */
  private nfacctMade: ReadonlySet<string> = new Set();
  /** Whether rules can match the counters (probeNfacctMatch): undefined until probed, null when they can, else why not. */
  private nfacctMatch: string | null | undefined;
  readonly inspect: ModeInspection;

  constructor(options: IptablesModeOptions, deps: IptablesModeDeps) {
    this.o = options;
    this.d = deps;
    this.families = [...options.iptables.keys()];
    this.record = new RulesRecord('iptables-restore', this.families);
    this.counting = options.trafficCounters ? new TrafficCounting(options.trafficCounters, deps.logger, deps.clock) : null;
    this.inspect = {
      rules: () => this.record.list(),
      objectsOf: (family, state) => this.objectsOf(family, state),
      traffic: () => this.counting?.totals.list() ?? null,
      trafficReadAt: (family) => this.counting?.totals.readAt(family) ?? null,
      ...(deps.nfacct ? { nfacctPackets: () => this.nfacctPackets(deps.nfacct!) } : {}),
    };
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
      st = {
        cache: new RenderCache(),
        applied: null,
        lastFullAt: -Infinity,
        topologyKey: '',
        lastRender: null,
        byKey: null,
        busy: Promise.resolve(),
      };
      this.state.set(family, st);
    }
    return st;
  }

  /** Runs fn after the family's previous sync or counter reading has finished. */
  private exclusive<T>(family: IPFamily, fn: () => Promise<T>): Promise<T> {
    const st = this.familyState(family);
    const run = st.busy.then(fn, fn);
    st.busy = run.catch(() => undefined);
    return run;
  }

  sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    return this.exclusive(snapshot.family, () => this.syncFamily(snapshot, ctx));
  }

  private async syncFamily(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const family = snapshot.family;
    const ipt = this.o.iptables.get(family);
    if (!ipt) throw new Error(`no ${family} iptables configured`);
    const st = this.familyState(family);
    const start = this.d.clock.now();
    // A change of the node's topology labels changes endpoint selection everywhere.
    const topologyKey = JSON.stringify([snapshot.node.zone, snapshot.node.addresses, snapshot.node.podCIDRs]);
    // Upstream's full syncs: the first, after a failure, after a flush, on a topology change, and hourly (FullSyncPeriod)
    // unless the last sync was in large-cluster mode (more than 1000 endpoints): upstream since #138571 (backported to
    // 1.34-1.36) skips that "just in case" rewrite there, which stalls large nodes. The periodic check still repairs
    // what it can see; a rule replaced in place then stays until some other full sync.
    const hourly = start - st.lastFullAt >= FULL_SYNC_PERIOD_MS && st.lastRender?.largeClusterMode !== true;
    let full = st.applied === null || topologyKey !== st.topologyKey || hourly;
    const log = this.d.logger.child({ ipFamily: family });
    if (family === 'IPv4') await this.setRouteLocalnet();

    // A full sync, and the periodic one that looks for outside changes, read the live tables; iptables-save runs while
    // we render. Counters are read just before the restore.
    const counting = this.counting;
    let saving = full || ctx.periodic ? readLiveTables(ipt, { counters: counting !== null }) : null;
    if (saving && counting) {
      saving = saving.then((text) => (counting.observe(family, text), text));
      saving.catch(() => undefined);
    }
    if (full) await this.ensureNfacct(ipt, log);
    const rendered = renderRuleset(snapshot, this.d.nfacct ? { ...this.o.render, nfacctCounters: this.nfacctMade } : this.o.render, st.cache);
    let outsideChange: OutsideChange | undefined;
    const onPhase = this.d.onPhase;
    onPhase?.('rendered');
    if (!full && saving && st.applied) {
      // Kube-proxy-ts goes further than upstream here: what changed outside it is found within a sync period, not an hour.
      const drift = findDrift(scanSave(await saving, family), st.applied, rendered.topLevel);
      if (drift.length > 0) {
        full = true;
        outsideChange = {
          family,
          kind: 'rules',
          message: `iptables rules were changed outside kube-proxy-ts (${drift[0]}${drift.length > 1 ? `, and ${drift.length - 1} more` : ''}): rewriting all of them`,
          fields: { drift: drift.slice(0, 10), more: Math.max(0, drift.length - 10) },
        };
      } else saving = null;
    }
    // Nothing changed since the last successful restore: no batch, nothing written.
    const plan = await applyRules({
      iptables: ipt,
      full,
      // The built-in chains (jump rules) are all it reads: the top level holds them, without building the whole nat table.
      desired: rendered.topLevel,
      counters: true,
      logger: log,
      saving,
      plan: (live) => {
        const planned = planSync({
          topLevel: rendered.topLevel,
          perService: rendered.perService,
          applied: full ? null : st.applied,
          ...(live ? { existingChains: live.chains, edits: live.jumpEdits } : {}),
          batchChains: this.o.batchChains ?? 0,
        });
        onPhase?.('planned');
        return planned;
      },
    }).catch((err: unknown) => {
      st.applied = null;
      if (err instanceof ApplyError) this.record.refused(family, this.d.clock.now(), err);
      throw err;
    });
    st.applied = plan.commit(full ? null : st.applied);
    if (full) st.lastFullAt = start;
    st.topologyKey = topologyKey;
    st.lastRender = rendered;
    st.byKey = null;
    this.counting?.rewritten(family, plan.writtenServiceChains);
    this.record.applied(family, appliedRules(start, full, plan.bytes, rendered));
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
    const conntrack = await reconcileAfterSync(this.d.conntrack, this.d.clock, { previous: ctx.previous, snapshot, log, failures });
    return {
      family,
      full,
      durationMs,
      objects: ruleCounts(rendered),
      written: new Map(['filter', 'nat'].map((table) => [table, plan.writtenRules.get(table) ?? 0])),
      bytes: plan.bytes,
      noLocalEndpoints: rendered.noLocalEndpoints,
      ...conntrack,
      failures,
      ...(outsideChange ? { outsideChange } : {}),
    };
  }

  /** Upstream's full-sync Ensure of the nfacct counters: one that cannot be made is left out of the rules, and said. */
  private async ensureNfacct(ipt: Iptables, log: Logger): Promise<void> {
    if (!this.d.nfacct) return;
    const { made, failures, toolMissing } = await ensureCounters(this.d.nfacct);
    if (made.size > 0 && this.nfacctMatch === undefined) {
      this.nfacctMatch = await probeNfacctMatch(ipt, [...made][0]!);
      if (this.nfacctMatch !== null)
        log.error(
          { err: this.nfacctMatch },
          'iptables cannot match nfacct counters (is xt_nfacct, CONFIG_NETFILTER_XT_MATCH_NFACCT, missing?): no rule counts into them and their metrics are not exported; the Service rules are written without them (upstream fails every sync here, kubernetes#142068)',
        );
    }
    this.nfacctMade = typeof this.nfacctMatch === 'string' ? new Set() : made;
    if (toolMissing) log.error({ err: toolMissing }, 'Failed to create nfacct runner, nfacct based metrics will not be available');
    for (const f of failures)
      log.error({ err: f.error, counter: f.counter }, 'Failed to create nfacct counter; the corresponding metric will not be updated');
  }

  /** Packets per nfacct counter the rules count into (the metrics read them at each scrape). */
  private async nfacctPackets(nfacct: Nfacct): Promise<ReadonlyMap<string, number>> {
    // Counters no rule can count into (no nfacct match) have nothing to say: no samples.
    if (typeof this.nfacctMatch === 'string') return new Map();
    const counters = await nfacct.list();
    return new Map(counters.filter((c) => NFACCT_COUNTERS.includes(c.name)).map((c) => [c.name, c.packets]));
  }

  /** Localhost NodePorts need route_localnet (IPv4 only); set once, before the first IPv4 rules. */
  private async setRouteLocalnet(): Promise<void> {
    if (this.localnetChecked || !this.o.render.localhostNodePorts || !this.d.runner) return;
    this.localnetChecked = true;
    const { error } = await ensureRouteLocalnet(this.d.runner);
    if (error) this.d.logger.warn(`cannot set net.ipv4.conf.all.route_localnet=1 (${error}): NodePorts on 127.0.0.1 will not work`);
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
    return (await this.flushedFamilies()).length > 0;
  }

  /** The families whose canary chain has disappeared. */
  private async flushedFamilies(): Promise<IPFamily[]> {
    const flushed: IPFamily[] = [];
    for (const ipt of this.o.iptables.values()) {
      try {
        if (!canaryPresent(await ipt.save(['mangle']), ipt.family)) flushed.push(ipt.family);
      } catch {
        // Like upstream, a failure to look (lock contention) counts as "still there".
      }
    }
    return flushed;
  }

  /**
   * An outside flush of the tables (firewalld reload, iptables -F) removes the
   * canary: every sync period, look for it; when it is gone, recreate it and
   * rewrite everything.
   */
  monitor(found: (change: OutsideChange) => void): () => void {
    this.watching = true;
    if (this.fullSyncDone && !this.canariesMade) this.makeCanaries('cannot create canary chains');
    const stopCounting = this.counting?.start(this.o.iptables, (f, fn) => this.exclusive(f, fn)) ?? (() => undefined);
    const stopCanary = every(this.d.clock, this.o.canaryPeriodMs ?? 30_000, async () => {
      const flushed = this.canariesMade ? await this.flushedFamilies() : [];
      if (flushed.length === 0) return;
      await this.ensureCanaries().catch((err: unknown) => this.d.logger.warn({ err }, 'cannot recreate canary chains'));
      // Each family counted (a firewalld reload flushes both).
      for (const family of flushed)
        found({
          family,
          kind: 'flushed',
          message: 'canary chain KUBE-PROXY-CANARY is gone: the tables were flushed from outside; resyncing everything',
        });
    });
    return () => {
      stopCanary();
      stopCounting();
    };
  }

  /** A service port's chains in the family's last render: its KUBE-EXT/FW/SVC/SVL chains and each endpoint's KUBE-SEP. */
  private objectsOf(family: IPFamily, state: ServicePortState): ServiceObjects | null {
    const st = this.state.get(family);
    if (!st?.lastRender) return null;
    st.byKey ??= new Map(st.lastRender.perService.map((e) => [e.key, e.render]));
    const render = st.byKey.get(`${state.service.key}/${state.service.protocol}`);
    if (!render) return null;
    const names = new Set(render.natChains.map((c) => c.name));
    const endpoints = new Map<string, string>();
    for (const ep of state.endpoints) {
      const chain = endpointChainName(state.service, ep);
      if (names.has(chain)) endpoints.set(endpointString(ep), chain);
    }
    return { service: [...names].filter((n) => !n.startsWith(SEP_PREFIX)), endpoints };
  }

  async close(): Promise<void> {}
}
