/**
 * The fake API server's storage: objects per resource, one global integer
 * resourceVersion bumped by every change (like etcd's revision), and an event
 * log a watch replays from. compact() drops history like etcd compaction:
 * watching from a resourceVersion below the floor is "too old" (410 Expired).
 */
import { randomUUID } from 'node:crypto';

export type Resource = 'services' | 'endpointslices' | 'nodes' | 'servicecidrs';
export const RESOURCES: readonly Resource[] = ['services', 'endpointslices', 'nodes', 'servicecidrs'];

export interface ResourceInfo {
  readonly kind: string;
  readonly apiVersion: string;
  /** URL prefix before the resource (and before namespaces/{ns}). */
  readonly prefix: string;
  readonly namespaced: boolean;
  /** Field labels the apiserver accepts in field selectors. */
  readonly fields: readonly string[];
}

export const RESOURCE_INFO: Readonly<Record<Resource, ResourceInfo>> = {
  services: {
    kind: 'Service',
    apiVersion: 'v1',
    prefix: '/api/v1',
    namespaced: true,
    fields: ['metadata.name', 'metadata.namespace', 'spec.clusterIP', 'spec.type'],
  },
  endpointslices: {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    prefix: '/apis/discovery.k8s.io/v1',
    namespaced: true,
    fields: ['metadata.name', 'metadata.namespace', 'addressType'],
  },
  nodes: { kind: 'Node', apiVersion: 'v1', prefix: '/api/v1', namespaced: false, fields: ['metadata.name', 'spec.unschedulable'] },
  // Served from Kubernetes 1.33 (networking.k8s.io/v1); FakeApiServerOptions.serviceCIDRs: false plays an older server.
  servicecidrs: {
    kind: 'ServiceCIDR',
    apiVersion: 'networking.k8s.io/v1',
    prefix: '/apis/networking.k8s.io/v1',
    namespaced: false,
    fields: ['metadata.name'],
  },
};

/** Plain JSON object with the metadata the fake manages. */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface LogEntry {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** State before the change (null for ADDED). */
  readonly prev: KubeObject | null;
  /** State after the change; for DELETED the last state carrying the deletion's resourceVersion. */
  readonly obj: KubeObject;
}

export function keyOf(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export class ObjectStore {
  private rv = 1;
  private floorRv = 0;
  private readonly objects = new Map<Resource, Map<string, KubeObject>>(RESOURCES.map((r) => [r, new Map()]));
  private log: LogEntry[] = [];
  private readonly onChange: (entry: LogEntry) => void;

  constructor(onChange: (entry: LogEntry) => void) {
    this.onChange = onChange;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Watches from a resourceVersion below this are expired. */
  get floor(): number {
    return this.floorRv;
  }

  list(resource: Resource): KubeObject[] {
    const map = this.objects.get(resource)!;
    return [...map.keys()].sort().map((k) => clone(map.get(k)!));
  }

  /**
   * The objects as they were at resourceVersion rv (sorted by key), rebuilt by
   * undoing the logged changes after rv; rv must not be below the floor.
   * Not copies: callers must not modify them.
   */
  listAt(resource: Resource, rv: number): KubeObject[] {
    if (rv < this.floorRv) throw new Error(`fake apiserver: state at resourceVersion ${rv} was compacted (floor ${this.floorRv})`);
    const state = new Map(this.objects.get(resource)!);
    const later = this.log.filter((e) => e.resource === resource && e.rv > rv);
    for (const e of later.reverse()) {
      const key = keyOf(e.obj);
      if (e.type === 'ADDED') state.delete(key);
      else state.set(key, e.prev!);
    }
    return [...state.keys()].sort().map((k) => state.get(k)!);
  }

  get(resource: Resource, key: string): KubeObject | null {
    const obj = this.objects.get(resource)!.get(key);
    return obj ? clone(obj) : null;
  }

  create(resource: Resource, input: KubeObject): KubeObject {
    const info = RESOURCE_INFO[resource];
    const obj = this.normalise(resource, input);
    const key = keyOf(obj);
    const map = this.objects.get(resource)!;
    if (map.has(key)) throw new Error(`fake apiserver: ${resource} "${key}" already exists`);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp();
    obj.metadata.resourceVersion = String(++this.rv);
    obj.kind = info.kind;
    obj.apiVersion = info.apiVersion;
    map.set(key, obj);
    this.record({ rv: this.rv, resource, type: 'ADDED', prev: null, obj: clone(obj) });
    return clone(obj);
  }

  /** Replaces the object. Unlike a real server, an update that changes nothing still bumps the resourceVersion and emits MODIFIED. */
  update(resource: Resource, input: KubeObject): KubeObject {
    const obj = this.normalise(resource, input);
    const key = keyOf(obj);
    const map = this.objects.get(resource)!;
    const prev = map.get(key);
    if (!prev) throw new Error(`fake apiserver: cannot update ${resource} "${key}": not found`);
    obj.metadata.uid = prev.metadata.uid!;
    obj.metadata.creationTimestamp = prev.metadata.creationTimestamp!;
    obj.metadata.resourceVersion = String(++this.rv);
    obj.kind = prev.kind!;
    obj.apiVersion = prev.apiVersion!;
    map.set(key, obj);
    this.record({ rv: this.rv, resource, type: 'MODIFIED', prev: clone(prev), obj: clone(obj) });
    return clone(obj);
  }

  delete(resource: Resource, key: string): KubeObject {
    const map = this.objects.get(resource)!;
    const prev = map.get(key);
    if (!prev) throw new Error(`fake apiserver: cannot delete ${resource} "${key}": not found`);
    map.delete(key);
    const last = clone(prev);
    last.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, resource, type: 'DELETED', prev: clone(prev), obj: last });
    return clone(last);
  }

  /** Forgets history up to uptoRv (default: all of it); watches from an older resourceVersion get 410. */
  compact(uptoRv = this.rv): void {
    if (uptoRv > this.rv) throw new Error(`fake apiserver: cannot compact to ${uptoRv}, beyond the current resourceVersion ${this.rv}`);
    this.floorRv = Math.max(this.floorRv, uptoRv);
    this.log = this.log.filter((e) => e.rv > this.floorRv);
  }

  /** Logged changes of a resource after resourceVersion rv (the caller checks rv >= floor). */
  since(resource: Resource, rv: number): LogEntry[] {
    return this.log.filter((e) => e.resource === resource && e.rv > rv);
  }

  private normalise(resource: Resource, input: KubeObject): KubeObject {
    const obj = clone(input);
    if (!obj.metadata || typeof obj.metadata.name !== 'string' || obj.metadata.name === '') {
      throw new Error(`fake apiserver: ${resource} object has no metadata.name`);
    }
    if (RESOURCE_INFO[resource].namespaced) obj.metadata.namespace = obj.metadata.namespace || 'default';
    else delete obj.metadata.namespace;
    return obj;
  }

  private record(entry: LogEntry): void {
    this.log.push(entry);
    this.onChange(entry);
  }
}
