/**
 * The contract between the mode-independent proxier and a proxy mode
 * (iptables/, userspace/): the proxier hands over complete desired state per
 * IP family; the mode makes it so. A sync that throws is retried by the
 * runner (and the mode must make its next sync a full one).
 */
import type { IPFamily, Snapshot } from './types.ts';

export interface SyncContext {
  /** The runner's periodic resync (not triggered by a change): modes write everything. */
  readonly periodic: boolean;
  /** Desired state of the previous successful sync of this family, or null. */
  readonly previous: Snapshot | null;
}

export interface FamilySyncResult {
  readonly family: IPFamily;
  readonly full: boolean;
  readonly durationMs: number;
}

export interface ModeBackend {
  readonly mode: 'iptables' | 'userspace';
  /** Programs one family. Throws on failure. */
  sync(snapshot: Snapshot, ctx: SyncContext): Promise<FamilySyncResult>;
  /** Forces the next sync of every family to be a full one (e.g. after an outside flush). */
  requestFullSync(): void;
  /** Removes everything this mode installed. */
  cleanup(): Promise<void>;
  /** Stops timers and sockets; leaves rules in place. */
  close(): Promise<void>;
}
