/**
 * What a source of cluster state (API server informers, or --objects files)
 * emits: add/update/delete events carrying both the previous and the current
 * object (upstream's change trackers need both), and a "synced" signal per
 * kind once the initial list has been delivered. Nothing is programmed before
 * Services, EndpointSlices and the Node have synced; ServiceCIDRs (watched in
 * the nftables mode only) hold nothing up.
 */

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';
export const OBJECT_KINDS: readonly ObjectKind[] = ['Service', 'EndpointSlice', 'Node', 'ServiceCIDR'];

export interface ObjectEvent {
  readonly type: 'add' | 'update' | 'delete';
  readonly kind: ObjectKind;
  /** "namespace/name" ("name" for cluster-scoped objects). */
  readonly key: string;
  /** The object before the change (null for add). Raw JSON-like data. */
  readonly old: unknown;
  /** The object after the change (null for delete). Raw JSON-like data. */
  readonly obj: unknown;
}

export interface SourceHandlers {
  /** Must not throw; sources guard against it anyway. */
  onEvent(event: ObjectEvent): void;
  /** The initial list of this kind has been delivered (called again after a relist). */
  onSynced(kind: ObjectKind): void;
  /** A non-fatal problem (watch failed and will be retried, malformed object, unreadable file...). */
  onProblem?(kind: ObjectKind | null, message: string, err?: unknown): void;
}

export interface ObjectSource {
  start(handlers: SourceHandlers): Promise<void>;
  stop(): Promise<void>;
}
