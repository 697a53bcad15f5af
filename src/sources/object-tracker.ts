/**
 * Our own record of the objects of one kind that downstream has been told
 * about, which turns informer callbacks into ObjectEvents with the previous
 * object (client-node's update callback carries only the new one). It also:
 * - normalises every object to plain JSON with kind/apiVersion set, so list
 *   items and watch objects look alike, keeping only the fields the agent
 *   reads (retained-fields.ts);
 * - drops no-op updates (same resourceVersion, or equal content apart from
 *   the resourceVersion: relists and spurious watch updates);
 * - reconciles a complete list against what we have (adds, updates, and
 *   deletes for objects that vanished while we were not watching), which is
 *   right whether or not the informer kept its own cache across a restart;
 * - applies a client-side filter (an object that stops passing it is deleted).
 */
import { objectKey } from '../../proxier/raw.ts';
import type { ObjectEvent, ObjectKind } from './events.ts';
import { retainedFields } from './retained-fields.ts';

export interface ObjectTrackerOptions {
  readonly kind: ObjectKind;
  /** Set on every object; a function when the source may change the version it asks for (the API source's ServiceCIDRs). */
  readonly apiVersion: string | (() => string);
  /**
   * The objects given are already retained copies (retained-fields.ts) that the caller hands over and never changes
   * (the API source: its list and watch hooks retain each object as it arrives, and ListWatch's cache keeps that
   * copy): they are kept as they are, not copied again, so the tracker and ListWatch share one copy of each object's
   * fields (at 10,000 Services and slices, ~15 MB less heap). Without it every object is copied (retainedFields).
   */
  readonly retained?: boolean;
  /** Client-side filter; objects failing it are treated as absent. */
  readonly accept?: (obj: Record<string, unknown>) => boolean;
  /** Receives every event; exceptions are the caller's business (wrap it). */
  readonly emit: (event: ObjectEvent) => void;
}

type Json = Record<string, unknown>;

function resourceVersionOf(obj: Json): unknown {
  return (obj['metadata'] as Json | undefined)?.['resourceVersion'];
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Json)[k], (b as Json)[k]));
}

/** Equal apart from metadata.resourceVersion. */
export function sameContent(a: Json, b: Json): boolean {
  const strip = (o: Json): Json => ({ ...o, metadata: { ...(o['metadata'] as Json), resourceVersion: null } });
  return deepEqual(strip(a), strip(b));
}

export class ObjectTracker {
  private readonly o: ObjectTrackerOptions;
  private readonly objects = new Map<string, Json>();

  constructor(options: ObjectTrackerOptions) {
    this.o = options;
  }

  get size(): number {
    return this.objects.size;
  }

  /** The object downstream last saw under this key. */
  get(key: string): unknown {
    return this.objects.get(key) ?? null;
  }

  keys(): string[] {
    return [...this.objects.keys()];
  }

  /**
   * The fields the agent reads (retained-fields.ts), with kind/apiVersion: a plain-JSON copy, or, with `retained`, the
   * object's own fields under a new top level; null if not an object with a name.
   */
  normalise(raw: unknown): Json | null {
    if (objectKey(raw) === null) return null;
    const fields = this.o.retained ? (raw as Json) : retainedFields(this.o.kind, raw as Json);
    const apiVersion = this.o.apiVersion;
    return { ...fields, kind: this.o.kind, apiVersion: typeof apiVersion === 'string' ? apiVersion : apiVersion() };
  }

  /** An added or updated object (from a watch event or a list item). */
  upsert(raw: unknown): void {
    const obj = this.normalise(raw);
    if (!obj) return;
    const key = objectKey(obj)!;
    const old = this.objects.get(key);
    if (this.o.accept && !this.o.accept(obj)) {
      if (old) this.removeKey(key);
      return;
    }
    if (!old) {
      this.objects.set(key, obj);
      this.o.emit({ type: 'add', kind: this.o.kind, key, old: null, obj });
      return;
    }
    const rv = resourceVersionOf(obj);
    if (rv !== undefined && rv === resourceVersionOf(old)) return;
    if (sameContent(old, obj)) {
      // Keep the newest resourceVersion without telling anyone.
      this.objects.set(key, obj);
      return;
    }
    this.objects.set(key, obj);
    this.o.emit({ type: 'update', kind: this.o.kind, key, old, obj });
  }

  /** A deleted object (the informer's last state of it; we report the state downstream saw). */
  remove(raw: unknown): void {
    const key = objectKey(raw);
    if (key !== null) this.removeKey(key);
  }

  /** A complete list: emits what changed since our record, including deletes for objects not listed. */
  reconcile(items: readonly unknown[]): void {
    const listed = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      if (key !== null) listed.add(key);
    }
    for (const key of [...this.objects.keys()]) if (!listed.has(key)) this.removeKey(key);
    for (const item of items) this.upsert(item);
  }

  private removeKey(key: string): void {
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    this.o.emit({ type: 'delete', kind: this.o.kind, key, old, obj: null });
  }
}
