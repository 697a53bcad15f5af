/**
 * The one contract between the mode-independent proxier and a proxy mode
 * (iptables/iptables-mode.ts, userspace/userspace-mode.ts; nftables/ next):
 * the proxier hands over the complete desired state of one IP family; the
 * mode makes it so and reports what it did. A mode owns its whole runtime
 * (background checks, sockets); src/ only wires it and turns its reports
 * into metrics and health. A sync that throws is retried by the runner, and
 * the mode has already made its next sync a full one.
 */
import type { IPFamily, Snapshot } from './types.ts';

export type ProxyModeName = 'iptables' | 'userspace' | 'nftables';

export interface SyncContext {
  /** The runner's periodic resync (not triggered by a change): modes write everything. */
  readonly periodic: boolean;
  /** Desired state of the previous successful sync of this family, or null. */
  readonly previous: Snapshot | null;
}

/** Something that went wrong without failing the sync; the mode has logged it. */
export interface SyncFailure {
  /** conntrack: stale entries not deleted; listener: a service port without its listener; cleanup: stale objects left. */
  readonly stage: 'conntrack' | 'listener' | 'cleanup';
  /** The service port concerned ("ns/name:port"), when there is one. */
  readonly service?: string;
  readonly message: string;
}

/** What one successful sync of one family did. */
export interface SyncReport {
  readonly family: IPFamily;
  readonly full: boolean;
  readonly durationMs: number;
  /**
   * Objects the mode owns per table after the sync (iptables: the rules of its chains; a mode that writes other
   * objects counts those, e.g. chains, sets, maps and elements). Empty when the mode counts none.
   */
  readonly objects: ReadonlyMap<string, number>;
  /** Objects written per table by this sync (0 for a table it left alone). */
  readonly written: ReadonlyMap<string, number>;
  /** Rules text sent to the kernel by this sync. */
  readonly bytes: number;
  /** Service ports with a Local traffic policy and no local endpoint, per policy; null when the mode does not count them. */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number } | null;
  /** Conntrack entries deleted after the sync (stale UDP flows). */
  readonly conntrackDeleted: number;
  readonly failures: readonly SyncFailure[];
}

/** A sync whose rules the kernel did not take (the error is its cause); nothing of it was applied. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly family: IPFamily;
  /** Whether it was a full sync (a failed partial one is counted separately, as upstream). */
  readonly full: boolean;

  constructor(family: IPFamily, full: boolean, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.family = family;
    this.full = full;
  }
}

export interface ProxyMode {
  readonly name: ProxyModeName;
  /** The IP families this mode programs, in sync order. */
  readonly families: readonly IPFamily[];
  /** Programs one family; rejects (an ApplyError when the kernel refused the rules) on failure. */
  sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport>;
  /** Forces the next sync of every family to be a full one (e.g. after an outside flush). */
  requestFullSync(): void;
  /** Starts the mode's background checks (outside damage, expiry sweeps); `resync` forces a full sync. Returns a stop function. */
  monitor(resync: () => void): () => void;
  /** Stops timers and sockets; leaves the rules in place. */
  close(): Promise<void>;
}
