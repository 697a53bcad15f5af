/**
 * The mode-independent proxier: folds object events into per-service dirty
 * marks, rebuilds the desired state of dirty services only (unchanged
 * services keep their ServicePortState objects, so the modes can skip them
 * by identity), and hands complete per-family snapshots to the mode through
 * the bounded-frequency runner.
 *
 * Nothing is programmed before Services, EndpointSlices and the Node have all
 * been listed once (no partial ruleset after a restart).
 */
import type { ProxyMode, SyncReport } from './mode.ts';
import type { Clock } from './clock.ts';
import { SyncRunner, type SyncTrigger } from './sync-runner.ts';
import { formatProblem } from './types.ts';
import type { IPFamily, NodeInfo, ObjectProblem, ServicePortState, Snapshot } from './types.ts';

export interface ProxierEvent {
  readonly type: 'add' | 'update' | 'delete';
  readonly kind: 'Service' | 'EndpointSlice' | 'Node';
  readonly key: string;
  readonly old: unknown;
  readonly obj: unknown;
}

/** Turns raw objects into desired state (proxier/snapshot.ts and friends). */
export interface StateBuilder {
  node(obj: unknown | null): { node: NodeInfo; problems: readonly ObjectProblem[] };
  service(svc: unknown, slices: readonly unknown[], node: NodeInfo, family: IPFamily): { states: readonly ServicePortState[]; problems: readonly ObjectProblem[] };
}

/** What the proxier reports to health checks and metrics. */
export interface ProxierHooks {
  queued?(family: IPFamily): void;
  synced?(family: IPFamily, result: { report: SyncReport; triggerTimes: readonly number[]; snapshot: Snapshot }): void;
  syncFailed?(family: IPFamily, err: unknown): void;
  problem?(p: ObjectProblem): void;
  nodeChanged?(node: NodeInfo): void;
  changes?(pending: { services: number; endpoints: number }, counted: { services: number; endpoints: number }): void;
}

export interface ProxierOptions {
  readonly families: readonly IPFamily[];
  readonly mode: ProxyMode;
  readonly builder: StateBuilder;
  readonly clock: Clock;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly hooks?: ProxierHooks;
}

const TRIGGER_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

function meta(o: unknown): { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } {
  return ((o as { metadata?: unknown } | null)?.metadata ?? {}) as never;
}

/** "ns/service" a slice belongs to, or null. */
function sliceService(slice: unknown): string | null {
  const m = meta(slice);
  const name = m.labels?.[SERVICE_NAME_LABEL];
  return typeof name === 'string' && name && typeof m.namespace === 'string' ? `${m.namespace}/${name}` : null;
}

export class Proxier {
  private readonly o: ProxierOptions;
  private readonly runner: SyncRunner;
  private readonly services = new Map<string, unknown>();
  private readonly slices = new Map<string, Map<string, unknown>>();
  private readonly sliceOwner = new Map<string, string>();
  private nodeObj: unknown = null;
  private node: NodeInfo;
  private readonly dirty = new Set<string>();
  private nodeDirty = true;
  private readonly synced = new Set<string>();
  private readonly states = new Map<IPFamily, Map<string, readonly ServicePortState[]>>();
  private readonly previous = new Map<IPFamily, Snapshot>();
  private readonly triggerTimes: number[] = [];
  private readonly startedAt: number;
  private pending = { services: 0, endpoints: 0 };
  private counted = { services: 0, endpoints: 0 };

  constructor(options: ProxierOptions) {
    this.o = options;
    this.node = options.builder.node(null).node;
    this.startedAt = options.clock.now();
    for (const f of options.families) this.states.set(f, new Map());
    this.runner = new SyncRunner({
      fn: (trigger) => this.sync(trigger),
      minIntervalMs: options.minSyncPeriodMs,
      maxIntervalMs: options.syncPeriodMs,
      retryIntervalMs: options.syncPeriodMs,
      clock: options.clock,
    });
  }

  get initialized(): boolean {
    return this.synced.has('Service') && this.synced.has('EndpointSlice') && this.synced.has('Node');
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

  onSynced(kind: 'Service' | 'EndpointSlice' | 'Node'): void {
    const was = this.initialized;
    this.synced.add(kind);
    if (!was && this.initialized) this.requestSync();
  }

  onEvent(e: ProxierEvent): void {
    if (e.kind === 'Service') {
      if (e.obj === null) this.services.delete(e.key);
      else this.services.set(e.key, e.obj);
      this.dirty.add(e.key);
      this.pending.services++;
      this.counted.services++;
    } else if (e.kind === 'EndpointSlice') {
      const before = this.sliceOwner.get(e.key);
      if (before) {
        this.slices.get(before)?.delete(e.key);
        this.dirty.add(before);
      }
      const owner = e.obj === null ? null : sliceService(e.obj);
      if (owner) {
        let m = this.slices.get(owner);
        if (!m) this.slices.set(owner, (m = new Map()));
        m.set(e.key, e.obj);
        this.sliceOwner.set(e.key, owner);
        this.dirty.add(owner);
        const t = Date.parse(meta(e.obj).annotations?.[TRIGGER_ANNOTATION] ?? '');
        if (!Number.isNaN(t) && t >= this.startedAt) this.triggerTimes.push(t);
      } else {
        this.sliceOwner.delete(e.key);
        if (e.obj !== null) this.o.hooks?.problem?.({ kind: 'EndpointSlice', namespace: meta(e.obj).namespace ?? '', name: e.key, field: `metadata.labels["${SERVICE_NAME_LABEL}"]`, reason: 'missing: the slice belongs to no service' });
      }
      this.pending.endpoints++;
      this.counted.endpoints++;
    } else {
      this.nodeObj = e.obj;
      this.nodeDirty = true;
    }
    this.o.hooks?.changes?.(this.pending, this.counted);
    this.requestSync();
  }

  private requestSync(): void {
    if (!this.initialized) return;
    for (const f of this.o.families) this.o.hooks?.queued?.(f);
    this.runner.run();
  }

  /** The desired state of every family, as of now (also used by diff/trace against a live agent). */
  snapshots(): Snapshot[] {
    this.refresh();
    return this.o.families.map((family) => this.snapshot(family));
  }

  private refresh(): void {
    if (this.nodeDirty) {
      const { node, problems } = this.o.builder.node(this.nodeObj);
      for (const p of problems) this.o.hooks?.problem?.(p);
      const changed = JSON.stringify(node) !== JSON.stringify(this.node);
      this.node = node;
      this.nodeDirty = false;
      if (changed) {
        this.o.hooks?.nodeChanged?.(node);
        // Locality, zone and addresses feed every service's endpoint selection.
        for (const key of this.services.keys()) this.dirty.add(key);
        for (const f of this.o.families) for (const key of this.states.get(f)!.keys()) this.dirty.add(key);
      }
    }
    for (const key of this.dirty) {
      const svc = this.services.get(key);
      const slices = [...(this.slices.get(key)?.values() ?? [])];
      // Each problem once per change, whichever families see it (some concern one family only).
      const reported = new Set<string>();
      for (const family of this.o.families) {
        const byKey = this.states.get(family)!;
        if (svc === undefined) {
          byKey.delete(key);
          continue;
        }
        const { states, problems } = this.o.builder.service(svc, slices, this.node, family);
        for (const p of problems) {
          const text = formatProblem(p);
          if (reported.has(text)) continue;
          reported.add(text);
          this.o.hooks?.problem?.(p);
        }
        if (states.length) byKey.set(key, states);
        else byKey.delete(key);
      }
    }
    this.dirty.clear();
  }

  private snapshot(family: IPFamily): Snapshot {
    const byKey = this.states.get(family)!;
    const keys = [...byKey.keys()].sort();
    const services: ServicePortState[] = [];
    for (const k of keys) services.push(...byKey.get(k)!);
    return { family, node: this.node, services };
  }

  private async sync(trigger: SyncTrigger): Promise<void> {
    if (!this.initialized) return;
    const snapshots = this.snapshots();
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
}
