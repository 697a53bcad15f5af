/**
 * The raw objects the proxier has been told about, as events deliver them:
 * Services by key, EndpointSlices grouped by the Service that owns them (the
 * service-name label; a relabelled slice moves), and this node's Node. It
 * says which services an event concerns, so that only those are rebuilt, and
 * keeps the start-up gate: nothing is programmed before Services,
 * EndpointSlices and the Node have all been listed once (no partial ruleset
 * after a restart).
 */
import { metadataOf, sliceServiceKey, TRIGGER_TIME_ANNOTATION } from './raw.ts';

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Node';

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
  /** A slice's last-change-trigger-time (ms), when it carries one. */
  readonly triggerTime: number | null;
  /** A slice that names no Service (kept nowhere). */
  readonly orphanSlice: boolean;
}

const NO_CHANGE: StoreChange = { services: [], node: false, triggerTime: null, orphanSlice: false };

export class ObjectStore {
  private readonly services = new Map<string, unknown>();
  /** Owning service key -> slice key -> slice. */
  private readonly slices = new Map<string, Map<string, unknown>>();
  private readonly sliceOwner = new Map<string, string>();
  private readonly listed = new Set<ObjectKind>();
  private nodeObj: unknown = null;

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

  /** The Node object (null before it was seen, or after it was deleted). */
  get node(): unknown {
    return this.nodeObj;
  }
}
