/**
 * The nftables mode: render -> plan -> one transaction -> remember, per IP
 * family, into the tables `ip kube-proxy` and `ip6 kube-proxy`, as upstream's
 * nftables proxier (pkg/proxy/nftables/proxier.go; generation B by default, see objects.ts).
 *
 * - A full sync (first sync, after any failure, after a node topology change,
 *   after outside damage, and at least once an hour as upstream's
 *   FullSyncPeriod) lists the table's names once: a missing table gets the
 *   chunked cold start, an existing one one full transaction (stale chains
 *   flushed; on the process's first full sync base chains re-created). Every
 *   chain is written, also on a restart: upstream's epChainSkipUpdate keeps
 *   the endpoint chains a new process finds, but a stale chain the old
 *   process flushed (an endpoint gone, its deletion pending) has the same
 *   name, and an endpoint that comes back would keep an empty chain: 1/N of
 *   new connections to its service black-holed until the hourly full sync
 *   (found by test/fuzz-nft*.test.ts; planFullSync's keepEndpoints stays for
 *   the bench).
 * - Every other sync, the periodic one included, is partial: only what
 *   changed since the last applied state; an unchanged sync sends nothing.
 *   Chains nothing wants are flushed at once and deleted by a separate
 *   transaction at least 1 s later (kernels before 6.2), after the main one,
 *   with generation B's hairpin-connections elements nothing wants (their
 *   delete would load nft's whole cache for the event's transaction);
 *   while changes keep coming, together once one has waited 10 s. That
 *   deletion runs beside the syncs that follow (`cleanupNft`, its own nft
 *   process: its cache load would otherwise hold up their rules); a sync
 *   waits for it only to list the table or to write one of its chains or
 *   elements again.
 * - A refused transaction rejects with ApplyError and forgets the applied
 *   state, so the next sync is full; a failed stale-chain deletion is
 *   reported (a `cleanup` failure) by the next sync to finish, and the next
 *   sync to start is full.
 * - monitor() lists the names every period and resyncs fully when the table
 *   or any chain, set or map the last sync wrote is gone, or a base chain is
 *   listed with another type, hook, priority or policy (upstream notices only
 *   when a later transaction fails, or at the hourly full sync). That full
 *   sync, and the one after a refused full sync, re-creates the base chains.
 * - For operators (`inspect`, inspect.ts): per family the table last applied
 *   as `nft -f` input and the last refused transaction with nft's error and
 *   the line it named; each service port's chains and map keys; with
 *   --traffic-counters, the packets and bytes each endpoint chain's named
 *   counter holds (counters.ts), read every --traffic-counters-period and
 *   for each /debug/traffic request (readTraffic: `top --mode nftables`).
 */
import type { Clock } from '../proxier/clock.ts';
import { every } from '../proxier/clock.ts';
import { reconcileAfterSync, type Conntrack } from '../proxier/conntrack.ts';
import type { Logger } from '../proxier/log.ts';
import {
  ApplyError,
  FULL_SYNC_PERIOD_MS,
  type ModeInspection,
  type OutsideChange,
  type ProxyMode,
  type ServiceObjects as ModeServiceObjects,
  type SyncContext,
  type SyncFailure,
  type SyncReport,
} from '../proxier/mode.ts';
import { RulesRecord } from '../proxier/rules-record.ts';
import type { IPFamily, ServicePortState, Snapshot } from '../proxier/types.ts';
import { planColdStart } from './cold-start.ts';
import { counterOwners, counterReadings, type CounterOwner, type CounterValue } from './counters.ts';
import { loggedTrafficTotals, type TrafficTotals } from '../proxier/traffic-totals.ts';
import { planFullSync, type LiveNames } from './full-sync.ts';
import { objectsOfService, refusedLine, servicesByKey, tableText } from './inspect.ts';
import { nftFamily, TABLE_NAME, type NftFamily } from './model.ts';
import type { ListNamesOptions, NftApi } from './nft.ts';
import { planPartialSync } from './partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRender, type NftRenderOptions } from './render.ts';
import type { ServiceObjects } from './render-service.ts';
import { elementOfId, type AppliedState, type SyncPlan } from './sync-state.ts';
import { changedBaseChains, countObjects, missingNames } from './table-check.ts';

/** What the mode needs of nft: Nft (real, over the command runner) and FakeNft both are this. */
export interface NftTables extends NftApi {
  listNames(family: NftFamily, options?: ListNamesOptions): Promise<LiveNames | null>;
}

export interface NftablesModeOptions {
  /** The families to program, in sync order (upstream runs both on every node). */
  readonly families: readonly IPFamily[];
  readonly render: NftRenderOptions;
  /** How often monitor() looks for outside damage (the sync period). */
  readonly monitorPeriodMs?: number;
  /**
   * --traffic-counters (with render.trafficCounters): the endpoint chains' named counters are read every `periodMs`
   * (from monitor() on) and kept as totals of at most `maxEndpoints` pairs; off when absent.
   */
  readonly trafficCounters?: { readonly periodMs: number; readonly maxEndpoints: number };
}

export interface NftablesModeDeps {
  readonly nft: NftTables;
  /**
   * Runs the stale-chain deletions, beside the syncs: in the agent a process of its own for each (its `delete` loads
   * nft's cache of the whole table, 0.1-0.4 s at 10,000 services, while the next sync's transaction goes through
   * `nft`). Default: `nft`.
   */
  readonly cleanupNft?: Pick<NftApi, 'run'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly conntrack?: Conntrack;
  /** Releases what the nft adapter holds (the long-running `nft -i`), at close(). */
  readonly closeNft?: () => Promise<void>;
}

interface FamilyState {
  readonly cache: NftRenderCache;
  applied: AppliedState | null;
  topologyKey: string;
  lastFullAt: number;
  /** A stale-chain deletion failed: the next sync is full (upstream). */
  forceFull: boolean;
  /** The stale-chain deletion running beside the syncs, with every chain and element (elementId) it and those queued before it delete. */
  cleanup: { readonly chains: ReadonlySet<string>; readonly elements: ReadonlySet<string>; readonly done: Promise<void> } | null;
  /** Deletions that failed since the last report, for the next one. */
  cleanupFailures: SyncFailure[];
  /** Base chains are deleted and re-created on a process's first full sync over an existing table (upstream #123162). */
  baseChainsRecreated: boolean;
  lastRender: NftRender | null;
  /** lastRender's service ports by key, built on the first /debug/services after a sync. */
  byKey: Map<string, ServiceObjects> | null;
  lastPlan: SyncPlan | null;
  /** Bumped by every sync attempt, so a damage check that raced a sync looks again. */
  generation: number;
}

/** How many listings a damage check makes while syncs race it, before it leaves the table to the next period. */
const DAMAGE_LOOKS = 3;

export class NftablesMode implements ProxyMode {
  readonly name = 'nftables' as const;
  readonly families: readonly IPFamily[];
  private readonly o: NftablesModeOptions;
  private readonly d: NftablesModeDeps;
  private readonly state = new Map<IPFamily, FamilyState>();
  /** The syncs running now (a damage check they race waits for them, then looks again). */
  private readonly running = new Set<Promise<unknown>>();
  private readonly record: RulesRecord;
  private readonly totals: TrafficTotals | null;
  /** Each family's counters: what each counted since this process first read it (the sum of its readings). */
  private readonly counted = new Map<IPFamily, Map<string, CounterValue>>();
  /** The reading running now (readCounters joins it rather than start a second `nft reset` beside it). */
  private reading: Promise<string[]> | null = null;
  /** Each family's counter owners, for the render they were read from. */
  private readonly owners = new Map<IPFamily, { readonly render: NftRender; readonly map: Map<string, CounterOwner> }>();
  readonly inspect: ModeInspection;

  constructor(options: NftablesModeOptions, deps: NftablesModeDeps) {
    this.o = options;
    this.d = deps;
    this.families = [...options.families];
    this.record = new RulesRecord('nft', this.families);
    this.inspect = {
      rules: () => this.record.list(),
      objectsOf: (family, state) => this.objectsOf(family, state),
      traffic: () => this.totals?.list() ?? null,
      trafficReadAt: (family) => this.totals?.readAt(family) ?? null,
      readTraffic: async () => {
        if (!this.totals) return { traffic: null, failures: [] };
        const failures = await this.readCounters();
        return { traffic: this.totals.list(), failures };
      },
    };
    const counting = options.trafficCounters;
    this.totals = counting ? loggedTrafficTotals(counting.maxEndpoints, deps.logger) : null;
  }

  /** The last rendered table of a family (tests compare it with the kernel's). */
  lastRender(family: IPFamily): NftRender | null {
    return this.state.get(family)?.lastRender ?? null;
  }

  /** The plan the last successful sync of a family applied (a full one without its transaction texts). */
  lastPlan(family: IPFamily): SyncPlan | null {
    return this.state.get(family)?.lastPlan ?? null;
  }

  requestFullSync(): void {
    for (const st of this.state.values()) st.applied = null;
  }

  private familyState(family: IPFamily): FamilyState {
    let st = this.state.get(family);
    if (!st) {
      st = {
        cache: new NftRenderCache(),
        applied: null,
        topologyKey: '',
        lastFullAt: 0,
        forceFull: false,
        cleanup: null,
        cleanupFailures: [],
        baseChainsRecreated: false,
        lastRender: null,
        byKey: null,
        lastPlan: null,
        generation: 0,
      };
      this.state.set(family, st);
    }
    return st;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const running = this.syncFamily(snapshot, ctx);
    this.running.add(running);
    try {
      return await running;
    } finally {
      this.running.delete(running);
    }
  }

  private async syncFamily(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const family = snapshot.family;
    if (!this.families.includes(family)) throw new Error(`the nftables mode does not program ${family} on this node`);
    const fam = nftFamily(family);
    const st = this.familyState(family);
    st.generation++;
    const start = this.d.clock.now();
    const log = this.d.logger.child({ ipFamily: family });
    // A change of the node's topology labels changes endpoint selection everywhere (upstream: needFullSync).
    const topologyKey = JSON.stringify([snapshot.node.zone, snapshot.node.addresses, snapshot.node.podCIDRs]);
    const previous = st.applied;
    const partial = previous !== null && !st.forceFull && topologyKey === st.topologyKey && start - st.lastFullAt < FULL_SYNC_PERIOD_MS;
    st.applied = null; // until this sync has succeeded: any failure makes the next one full
    // A full sync lists the table: a deletion still running ends first, so that the listing shows its result.
    if (!partial) await this.cleanupsOf(st);

    // A full sync lists the live names (~1 s of nft's own work at 10,000 services) while the render runs on this
    // thread: the listing starts first and is awaited after. The catch only keeps a render error from leaving the
    // listing's rejection unhandled; awaiting it below still throws.
    const listing = partial ? null : this.liveNames(fam);
    listing?.catch(() => undefined);
    const render = renderNftables(snapshot, this.o.render, st.cache);
    let plan: SyncPlan;
    let coldStart = false;
    if (partial) plan = planPartialSync(render, previous, start);
    else {
      const live = await listing!;
      coldStart = live === null;
      plan = coldStart
        ? planColdStart(render)
        : planFullSync(render, {
            now: start,
            live,
            recreateBaseChains: !st.baseChainsRecreated,
            previous,
          });
    }
    const deleting = st.cleanup;
    if (
      deleting !== null &&
      (plan.rewritten === null || plan.rewritten.some((c) => deleting.chains.has(c)) || plan.addedElements.some((e) => deleting.elements.has(e)))
    )
      await this.cleanupsOf(st);
    let input = '';
    let bytes = plan.cleanup.length;
    try {
      for (const t of transactionsOf(plan)) {
        input = t;
        bytes += t.length;
        if (t !== '') await this.d.nft.run(t);
      }
    } catch (err) {
      log.error({ err: (err as Error).message, full: plan.full }, 'nftables sync failed');
      // A base chain re-created from outside at another priority refuses every full sync's `add chain`: the next one
      // deletes and re-creates them, as a process's first does (upstream only there, so it stays refused until a restart).
      if (plan.full) st.baseChainsRecreated = false;
      const refused = new ApplyError(family, plan.full, err, { input, line: refusedLine(err) });
      this.record.refused(family, this.d.clock.now(), refused);
      throw refused;
    }

    const failures: SyncFailure[] = st.cleanupFailures.splice(0);
    if (plan.cleanup) this.deleteBeside(st, plan, log);
    if (plan.full) {
      // Its listing came after every earlier deletion had ended: it found what a failed one left.
      st.forceFull = false;
      st.lastFullAt = start;
      st.baseChainsRecreated = true;
      for (const w of render.warnings) log.warn(w);
    }
    st.applied = plan.next;
    st.topologyKey = topologyKey;
    st.lastRender = render;
    st.byKey = null;
    // A full plan's text (~20 MB at 10,000 service ports) is not kept between syncs; /debug/rules renders the table.
    st.lastPlan = plan.full ? { ...plan, text: '', more: [], operations: plan.operations } : plan;
    this.record.applied(family, { at: start, full: plan.full, bytes, text: () => tableText(render) });
    const durationMs = this.d.clock.now() - start;
    log.debug(
      {
        full: plan.full,
        coldStart,
        operations: plan.operations,
        transactions: (plan.text ? 1 : 0) + plan.more.length,
        staleDeleting: plan.cleanupChains.length,
        staleElementsDeleting: plan.cleanupElements.length,
        bytes,
        durationMs,
      },
      'synced nftables rules',
    );
    const conntrack = await reconcileAfterSync(this.d.conntrack, this.d.clock, { previous: ctx.previous, snapshot, log, failures });
    return {
      family,
      full: plan.full,
      durationMs,
      objects: new Map([[TABLE_NAME, countObjects(render, plan.next.elements)]]),
      written: new Map([[TABLE_NAME, plan.operations]]),
      bytes,
      noLocalEndpoints: render.noLocalEndpoints,
      ...conntrack,
      failures,
    };
  }

  /**
   * The table's names for a full sync. Without --traffic-counters, with its named counters too (read with `reset`: no
   * one uses their values then, and a reset costs nft no cache of the table): those an earlier run made are deleted by
   * the full sync. With it, none are listed: every counter is named after an endpoint chain and deleted with it.
   */
  private async liveNames(fam: NftFamily): Promise<LiveNames | null> {
    const counting = this.o.render.trafficCounters === true;
    const [names, counters] = await Promise.all([
      this.d.nft.listNames(fam),
      counting ? null : this.d.nft.counters(fam, { reset: true }).catch(() => null),
    ]);
    return names === null || counters === null ? names : { ...names, counters: counters.map((c) => c.name) };
  }

  /**
   * Reads each family's named counters into the totals (--traffic-counters), with `nft reset counters`: each reading
   * takes what the kernel counted since the last one (nft needs no cache of the table for it; listing them would load
   * the whole table), which is added to the counter's running total here. Counters persist across rewrites of their
   * chains, so a reading needs no lock against the syncs. Only the counters of the last render's endpoint chains count:
   * one of a stale chain (its endpoint gone) is dropped with its total, and starts again from zero should the endpoint
   * come back. Called every period and for /debug/traffic (`top`); a call while a reading runs waits for that one.
   * Resolves with what could not be read ("IPv4: <nft's error>"), each also logged; the totals keep the last reading.
   */
  readCounters(): Promise<string[]> {
    if (!this.reading) this.reading = this.readEachFamily().finally(() => (this.reading = null));
    return this.reading;
  }

  private async readEachFamily(): Promise<string[]> {
    const totals = this.totals;
    const failures: string[] = [];
    if (!totals) return failures;
    for (const family of this.families) {
      if (!this.state.get(family)?.lastRender) continue;
      let values;
      try {
        values = await this.d.nft.counters(nftFamily(family), { reset: true });
      } catch (err) {
        this.d.logger.warn({ ipFamily: family, err: (err as Error).message }, 'traffic counters: cannot read the kube-proxy table');
        failures.push(`${family}: ${(err as Error).message}`);
        continue;
      }
      if (values === null) {
        // Deleted from outside: monitor() repairs it, and its counters count again from zero. The totals are kept, so
        // the series go on from where they were rather than end and start again.
        failures.push(`${family}: no table ${nftFamily(family)} ${TABLE_NAME} (deleted from outside? the next sync makes it again)`);
        continue;
      }
      // The render as of now, after the reading: a chain the sync that just ended added is in it.
      const render = this.state.get(family)!.lastRender!;
      let owners = this.owners.get(family);
      if (owners?.render !== render) this.owners.set(family, (owners = { render, map: counterOwners(render) }));
      const before = this.counted.get(family) ?? new Map<string, CounterValue>();
      const now = new Map<string, CounterValue>();
      for (const v of values) {
        if (!owners.map.has(v.name)) continue; // a stale chain's: its endpoint is gone
        const b = before.get(v.name);
        now.set(v.name, b ? { name: v.name, packets: b.packets + v.packets, bytes: b.bytes + v.bytes } : v);
      }
      this.counted.set(family, now);
      totals.observe(family, counterReadings([...now.values()], owners.map), this.d.clock.now());
    }
    return failures;
  }

  /**
   * Starts deleting stale chains beside the syncs, after any deletion still running. A failure is logged, reported by
   * the next sync to finish and makes the next to start full, as upstream (its listing finds the chains again).
   */
  private deleteBeside(st: FamilyState, plan: SyncPlan, log: Logger): void {
    const { cleanup: text, cleanupChains: chains, cleanupElements: elements } = plan;
    const before = st.cleanup;
    const run = () => (this.d.cleanupNft ?? this.d.nft).run(text);
    const done = (before ? before.done.then(run) : run()).then(
      () => log.debug({ chains: chains.length, elements: elements.length }, 'deleted stale nftables chains'),
      (err: unknown) => {
        const what = [...chains, ...elements.map((e) => elementOfId(e).join(' { ') + ' }')].join(', ');
        const message = `cannot delete stale chains ${what}: ${(err as Error).message}`;
        log.warn(message);
        st.cleanupFailures.push({ stage: 'cleanup', message });
        st.forceFull = true;
      },
    );
    const entry = {
      chains: new Set([...(before?.chains ?? []), ...chains]),
      elements: new Set([...(before?.elements ?? []), ...elements]),
      done,
    };
    st.cleanup = entry;
    void done.then(() => {
      if (st.cleanup === entry) st.cleanup = null;
    });
  }

  /** Waits until no stale-chain deletion of the family is running. */
  private async cleanupsOf(st: FamilyState): Promise<void> {
    while (st.cleanup !== null) await st.cleanup.done;
  }

  /** Waits until no stale-chain deletion is running (tests; close()). */
  async deletionsDone(): Promise<void> {
    for (const st of this.state.values()) await this.cleanupsOf(st);
  }

  /**
   * What is missing from a family's table, compared with the last applied
   * state: "table" when it is gone, else the missing chain, set and map
   * names and the base chains listed with another type, hook, priority or
   * policy; null when nothing is known yet (no sync has succeeded since the
   * last failure) or syncs kept landing during the listing.
   */
  async damage(family: IPFamily): Promise<string[] | null> {
    const found = await this.findDamage(family);
    return found === null ? null : found === 'table' ? ['table'] : [...found.missing, ...found.changed];
  }

  /**
   * damage(), by kind. A listing a sync raced (it may have changed the table
   * meanwhile) is not compared: the check waits for that sync and lists again,
   * up to DAMAGE_LOOKS times, so that periodic syncs (every sync period, as the
   * check) cannot put a repair off by whole periods. A changed base chain makes
   * the next full sync delete and re-create the base chains, as a process's
   * first does: `add chain` over one at another priority is refused ("Operation
   * not supported"), and leaves a policy set from outside as it is.
   */
  private async findDamage(family: IPFamily): Promise<'table' | { missing: string[]; changed: string[] } | null> {
    for (let look = 1; look <= DAMAGE_LOOKS; look++) {
      await Promise.allSettled(this.running);
      const st = this.state.get(family);
      if (!st?.applied) return null;
      if (this.running.size > 0) continue; // another sync began: wait for it
      const generation = st.generation;
      const applied = st.applied;
      // Beside the session, not in its queue: an event's transaction must not wait for this listing.
      const live = await this.d.nft.listNames(nftFamily(family), { session: false });
      if (this.running.size !== 0 || st.generation !== generation) continue;
      if (live === null) return 'table';
      const changed = changedBaseChains(applied, live);
      if (changed.length > 0) st.baseChainsRecreated = false;
      return { missing: missingNames(applied, live), changed };
    }
    return null;
  }

  /**
   * Every period, each family's table is listed (names only, ~1 s at 10,000
   * services); a deleted table, a missing chain, set or map, or a base chain
   * changed is reported through `found`, which the agent answers with a full
   * sync at once.
   */
  monitor(found: (change: OutsideChange) => void): () => void {
    const counting = this.o.trafficCounters;
    const stopCounting = counting && this.totals ? every(this.d.clock, counting.periodMs, () => this.readCounters()) : () => undefined;
    const stopDamage = every(this.d.clock, this.o.monitorPeriodMs ?? 30_000, async () => {
      for (const family of this.families) {
        let damage: Awaited<ReturnType<NftablesMode['findDamage']>>;
        try {
          damage = await this.findDamage(family);
        } catch (err) {
          this.d.logger.warn({ ipFamily: family, err: (err as Error).message }, 'cannot list the kube-proxy table');
          continue;
        }
        if (damage === null) continue;
        const table = `table ${nftFamily(family)} ${TABLE_NAME}`;
        let what: string;
        if (damage === 'table') what = `${table} is gone`;
        else {
          const parts: string[] = [];
          if (damage.missing.length > 0) parts.push(`missing from ${table}: ${summary(damage.missing)}`);
          if (damage.changed.length > 0) parts.push(`base chains changed in ${table}: ${damage.changed.join(', ')}`);
          if (parts.length === 0) continue;
          what = parts.join('; ');
        }
        found({ family, kind: damage === 'table' ? 'table' : 'rules', message: `${what}: changed from outside; resyncing everything` });
        return;
      }
    });
    return () => {
      stopCounting();
      stopDamage();
    };
  }

  /** A service port's chains and map keys in the family's last render, and each endpoint's endpoint- chain. */
  private objectsOf(family: IPFamily, state: ServicePortState): ModeServiceObjects | null {
    const st = this.state.get(family);
    if (!st?.lastRender) return null;
    st.byKey ??= servicesByKey(st.lastRender);
    return objectsOfService(st.byKey, state);
  }

  async close(): Promise<void> {
    await this.deletionsDone();
    await this.d.closeNft?.();
  }
}

function summary(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/** The main transaction, then the plan's further ones, each made as the iteration reaches it. */
function* transactionsOf(plan: SyncPlan): Generator<string> {
  yield plan.text;
  yield* plan.more;
}
