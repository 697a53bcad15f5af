/**
 * The raw objects the proxier has been told about, as events deliver them:
 * Services by key, EndpointSlices grouped by the Service that owns them (the
 * service-name label; a relabelled slice moves), this node's Node, and the
 * ServiceCIDRs. It says which services an event concerns, so that only those
 * are rebuilt, and keeps the start-up gate: nothing is programmed before
 * Services, EndpointSlices and the Node have all been listed once (no partial
 * ruleset after a restart). ServiceCIDRs do not hold the gate, as upstream's
 * proxier does not wait for them: a sync after they arrive adds the rule.
 */
import { metadataOf, sliceServiceKey, TRIGGER_TIME_ANNOTATION } from './raw.ts';

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';

export interface ProxierEvent {
  readonly type: 'add' | 'update' | 'delete';
  readonly kind: ObjectKind;
  readonly key: string;
  readonly old: unknown;
  /** The object after the change; null when it was deleted. */
  readonly obj: unknown;
}

/** What one event changed. */
export interface StoreChange {
  /** Keys ("ns/name") of the services whose desired state may have changed. */
  readonly services: readonly string[];
  /** The Node object changed. */
  readonly node: boolean;
  /** A ServiceCIDR object came, changed or went. */
  readonly serviceCIDRs: boolean;
  /** A slice's last-change-trigger-time (ms), when it carries one. */
  readonly triggerTime: number | null;
  /** A slice that names no Service (kept nowhere). */
  readonly orphanSlice: boolean;
}

const NO_CHANGE: StoreChange = { services: [], node: false, serviceCIDRs: false, triggerTime: null, orphanSlice: false };

export class ObjectStore {
  private readonly services = new Map<string, unknown>();
  /** Owning service key -> slice key -> slice. */
  private readonly slices = new Map<string, Map<string, unknown>>();
  private readonly sliceOwner = new Map<string, string>();
  private readonly listed = new Set<ObjectKind>();
  private nodeObj: unknown = null;
  private readonly cidrObjs = new Map<string, unknown>();

  /** Every kind has been listed once. */
  get initialized(): boolean {
    return this.listed.has('Service') && this.listed.has('EndpointSlice') && this.listed.has('Node');
  }

  /** Records that a kind has been listed; true when that completes the start-up gate. */
  markListed(kind: ObjectKind): boolean {
    const was = this.initialized;
    this.listed.add(kind);
    return !was && this.initialized;
  }

  apply(e: ProxierEvent): StoreChange {
    if (e.kind === 'Node') {
      this.nodeObj = e.obj;
      return { ...NO_CHANGE, node: true };
    }
    if (e.kind === 'ServiceCIDR') {
      if (e.obj === null) this.cidrObjs.delete(e.key);
      else this.cidrObjs.set(e.key, e.obj);
      return { ...NO_CHANGE, serviceCIDRs: true };
    }
    if (e.kind === 'Service') {
      if (e.obj === null) this.services.delete(e.key);
      else this.services.set(e.key, e.obj);
      return { ...NO_CHANGE, services: [e.key] };
    }
    const dirty: string[] = [];
    const before = this.sliceOwner.get(e.key);
    if (before) {
      this.slices.get(before)?.delete(e.key);
      dirty.push(before);
    }
    const owner = e.obj === null ? null : sliceServiceKey(e.obj);
    if (!owner) {
      this.sliceOwner.delete(e.key);
      return { ...NO_CHANGE, services: dirty, orphanSlice: e.obj !== null };
    }
    let m = this.slices.get(owner);
    if (!m) this.slices.set(owner, (m = new Map()));
    m.set(e.key, e.obj);
    this.sliceOwner.set(e.key, owner);
    if (owner !== before) dirty.push(owner);
    const t = Date.parse(metadataOf(e.obj).annotations[TRIGGER_TIME_ANNOTATION] ?? '');
    return { ...NO_CHANGE, services: dirty, triggerTime: Number.isNaN(t) ? null : t };
  }

  /** The Service object of a key, or undefined when there is none. */
  service(key: string): unknown {
    return this.services.get(key);
  }

  serviceKeys(): IterableIterator<string> {
    return this.services.keys();
  }

  /** The slices that belong to a service. */
  slicesOf(key: string): unknown[] {
    return [...(this.slices.get(key)?.values() ?? [])];
  }

  /** The ServiceCIDR objects. */
  serviceCIDRObjects(): IterableIterator<unknown> {
    return this.cidrObjs.values();
  }

  /** The Node object (null before it was seen, or after it was deleted). */
  get node(): unknown {
    return this.nodeObj;
  }
}
