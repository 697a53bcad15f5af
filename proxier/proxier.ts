/**
 * The mode-independent proxier: folds object events (object-store.ts) into
 * per-service dirty marks, rebuilds the desired state of dirty services only
 * (unchanged services keep their ServicePortState objects, so the modes can
 * skip them by identity), and hands complete per-family snapshots to the
 * mode through the bounded-frequency runner, once the start-up gate is open.
 */
import type { Clock } from './clock.ts';
import type { ProxyMode, SyncReport } from './mode.ts';
import { ObjectStore, type ObjectKind, type ProxierEvent } from './object-store.ts';
import { metadataOf, SERVICE_NAME_LABEL } from './raw.ts';
import { NO_SERVICE_CIDRS, serviceCIDRsFrom, type ServiceCIDRs } from './service-cidrs.ts';
import { SyncRunner, type SyncTrigger } from './sync-runner.ts';
import { formatProblem } from './types.ts';
import type { IPFamily, NodeInfo, ObjectProblem, ServicePortState, Snapshot } from './types.ts';

export type { ProxierEvent };

/** Turns raw objects into desired state (state-builder.ts over snapshot.ts and friends). */
export interface StateBuilder {
  node(obj: unknown | null): { node: NodeInfo; problems: readonly ObjectProblem[] };
  service(
    svc: unknown,
    slices: readonly unknown[],
    node: NodeInfo,
    family: IPFamily,
  ): { states: readonly ServicePortState[]; problems: readonly ObjectProblem[] };
}

/** What the proxier reports to health checks and metrics. */
export interface ProxierHooks {
  queued?(family: IPFamily): void;
  synced?(family: IPFamily, result: { report: SyncReport; triggerTimes: readonly number[]; snapshot: Snapshot }): void;
  syncFailed?(family: IPFamily, err: unknown): void;
  problem?(p: ObjectProblem): void;
  nodeChanged?(node: NodeInfo): void;
  /** The ServiceCIDRs of some family changed (not called for a change that leaves them as they were). */
  serviceCIDRsChanged?(cidrs: ServiceCIDRs): void;
  changes?(pending: { services: number; endpoints: number }, counted: { services: number; endpoints: number }): void;
}

export interface ProxierOptions {
  /** The mode programs its families (ProxyMode.families), in that order. */
  readonly mode: ProxyMode;
  readonly builder: StateBuilder;
  readonly clock: Clock;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly hooks?: ProxierHooks;
  /**
   * This host's interface addresses, for every family's snapshot (Snapshot.hostAddresses). Upstream's syncProxyRules
   * lists them (GetNodeIPs) at every sync; here at the first sync, at every periodic one, and at a sync a change
   * triggered once the last read is a sync period old, so a change of the host's addresses reaches the rules within
   * the sync period (also while events keep every sync a change-triggered one) and the syncs events trigger in between
   * read nothing (a read is ~4 ms on a node with 300 interfaces). Without it snapshots have none (the Node's addresses
   * stand in).
   */
  readonly hostAddresses?: () => readonly string[] | Promise<readonly string[]>;
}

export class Proxier {
  private readonly o: ProxierOptions;
  private readonly families: readonly IPFamily[];
  private readonly runner: SyncRunner;
  private readonly store = new ObjectStore();
  private node: NodeInfo;
  private readonly dirty = new Set<string>();
  private nodeDirty = true;
  private serviceCIDRs: ServiceCIDRs = NO_SERVICE_CIDRS;
  private cidrsDirty = false;
  /** Desired state per family and service key, rebuilt for dirty services only. */
  private readonly states = new Map<IPFamily, Map<string, readonly ServicePortState[]>>();
  /** Each family's service keys in sorted order, kept until a key comes or goes (sorting 10,000 keys per event costs ~2 ms). */
  private readonly sortedKeys = new Map<IPFamily, string[] | null>();
  private readonly previous = new Map<IPFamily, Snapshot>();
  private readonly triggerTimes: number[] = [];
  private readonly startedAt: number;
  private pending = { services: 0, endpoints: 0 };
  /** The last read of the host's addresses, and when it was made. */
  private hostRead: { readonly at: number; readonly addresses: readonly string[] } | null = null;
  private counted = { services: 0, endpoints: 0 };

  constructor(options: ProxierOptions) {
    this.o = options;
    this.families = options.mode.families;
    this.node = options.builder.node(null).node;
    this.startedAt = options.clock.now();
    for (const f of this.families) this.states.set(f, new Map());
    this.runner = new SyncRunner({
      fn: (trigger) => this.sync(trigger),
      minIntervalMs: options.minSyncPeriodMs,
      maxIntervalMs: options.syncPeriodMs,
      retryIntervalMs: options.syncPeriodMs,
      clock: options.clock,
    });
  }

  get initialized(): boolean {
    return this.store.initialized;
  }

  start(): void {
    this.runner.start();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  /** Waits for the sync in progress, if any. */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  /** Forces a full resync (e.g. the canary found the tables flushed). */
  requestFullSync(): void {
    this.o.mode.requestFullSync();
    this.requestSync();
  }

  onSynced(kind: ObjectKind): void {
    if (this.store.markListed(kind)) this.requestSync();
  }

  onEvent(e: ProxierEvent): void {
    const change = this.store.apply(e);
    for (const key of change.services) this.dirty.add(key);
    if (change.node) this.nodeDirty = true;
    if (change.serviceCIDRs) this.cidrsDirty = true;
    if (change.triggerTime !== null && change.triggerTime >= this.startedAt) this.triggerTimes.push(change.triggerTime);
    if (change.orphanSlice) {
      const field = `metadata.labels["${SERVICE_NAME_LABEL}"]`;
      this.o.hooks?.problem?.({
        kind: 'EndpointSlice',
        namespace: metadataOf(e.obj).namespace,
        name: e.key,
        field,
        reason: 'missing: the slice belongs to no service',
      });
    }
    if (e.kind === 'Service') {
      this.pending.services++;
      this.counted.services++;
    } else if (e.kind === 'EndpointSlice') {
      this.pending.endpoints++;
      this.counted.endpoints++;
    }
    this.o.hooks?.changes?.(this.pending, this.counted);
    this.requestSync();
  }

  private requestSync(): void {
    if (!this.initialized) return;
    for (const f of this.families) this.o.hooks?.queued?.(f);
    this.runner.run();
  }

  /** The desired state the last successful sync of a family programmed, or null before one. */
  lastSynced(family: IPFamily): Snapshot | null {
    return this.previous.get(family) ?? null;
  }

  /** The desired state of every family, as of now (what the next sync hands the mode). */
  snapshots(): Snapshot[] {
    this.refresh();
    return this.families.map((family) => this.snapshot(family));
  }

  private refresh(): void {
    if (this.cidrsDirty) {
      const { cidrs, problems } = serviceCIDRsFrom(this.store.serviceCIDRObjects());
      for (const p of problems) this.o.hooks?.problem?.(p);
      const changed = JSON.stringify(cidrs) !== JSON.stringify(this.serviceCIDRs);
      this.serviceCIDRs = cidrs;
      this.cidrsDirty = false;
      if (changed) this.o.hooks?.serviceCIDRsChanged?.(cidrs);
    }
    if (this.nodeDirty) {
      const { node, problems } = this.o.builder.node(this.store.node);
      for (const p of problems) this.o.hooks?.problem?.(p);
      const changed = JSON.stringify(node) !== JSON.stringify(this.node);
      this.node = node;
      this.nodeDirty = false;
      if (changed) {
        this.o.hooks?.nodeChanged?.(node);
        // Locality, zone and addresses feed every service's endpoint selection.
        for (const key of this.store.serviceKeys()) this.dirty.add(key);
        for (const f of this.families) for (const key of this.states.get(f)!.keys()) this.dirty.add(key);
      }
    }
    for (const key of this.dirty) {
      const svc = this.store.service(key);
      const slices = this.store.slicesOf(key);
      // Each problem once per change, whichever families see it (some concern one family only).
      const reported = new Set<string>();
      for (const family of this.families) {
        const byKey = this.states.get(family)!;
        if (svc === undefined) {
          if (byKey.delete(key)) this.sortedKeys.set(family, null);
          continue;
        }
        const { states, problems } = this.o.builder.service(svc, slices, this.node, family);
        for (const p of problems) {
          const text = formatProblem(p);
          if (reported.has(text)) continue;
          reported.add(text);
          this.o.hooks?.problem?.(p);
        }
        if (states.length) {
          if (!byKey.has(key)) this.sortedKeys.set(family, null);
          byKey.set(key, states);
        } else if (byKey.delete(key)) this.sortedKeys.set(family, null);
      }
    }
    this.dirty.clear();
  }

  private snapshot(family: IPFamily): Snapshot {
    const byKey = this.states.get(family)!;
    let keys = this.sortedKeys.get(family);
    if (!keys) {
      keys = [...byKey.keys()].sort();
      this.sortedKeys.set(family, keys);
    }
    const services: ServicePortState[] = [];
    for (let i = 0; i < keys.length; i++) {
      const states = byKey.get(keys[i]!)!;
      for (let j = 0; j < states.length; j++) services.push(states[j]!);
    }
    const cidrs = this.serviceCIDRs[family];
    return { family, node: this.node, services, ...(cidrs.length > 0 ? { serviceCIDRs: cidrs } : {}) };
  }

  private async sync(trigger: SyncTrigger): Promise<void> {
    if (!this.initialized) return;
    const hostAddresses = await this.hostAddresses(trigger);
    const snapshots = hostAddresses ? this.snapshots().map((s) => ({ ...s, hostAddresses })) : this.snapshots();
    const triggers = this.triggerTimes.splice(0);
    this.pending = { services: 0, endpoints: 0 };
    this.o.hooks?.changes?.(this.pending, this.counted);
    let failure: unknown = null;
    for (const snapshot of snapshots) {
      try {
        const report = await this.o.mode.sync(snapshot, { periodic: trigger === 'periodic', previous: this.previous.get(snapshot.family) ?? null });
        this.previous.set(snapshot.family, snapshot);
        this.o.hooks?.synced?.(snapshot.family, { report, triggerTimes: triggers, snapshot });
      } catch (err) {
        failure ??= err;
        this.o.hooks?.syncFailed?.(snapshot.family, err);
      }
    }
    if (failure !== null) throw failure;
  }

  /** The host's addresses for this sync: read again at the first and every periodic sync, and once a sync period old. */
  private async hostAddresses(trigger: SyncTrigger): Promise<readonly string[] | undefined> {
    const read = this.o.hostAddresses;
    if (!read) return undefined;
    const now = this.o.clock.now();
    const last = this.hostRead;
    if (last && trigger !== 'periodic' && now - last.at < this.o.syncPeriodMs) return last.addresses;
    const addresses = await read();
    this.hostRead = { at: now, addresses };
    return addresses;
  }
}
