/**
 * The one contract between the mode-independent proxier and a proxy mode
 * (iptables/iptables-mode.ts, userspace/userspace-mode.ts, nftables/nftables-mode.ts):
 * the proxier hands over the complete desired state of one IP family; the
 * mode makes it so and reports what it did. A mode owns its whole runtime
 * (background checks, sockets); src/ only wires it and turns its reports
 * into metrics and health. A sync that throws is retried by the runner, and
 * the mode has already made its next sync a full one.
 */
import type { FamilyRules } from './rules-record.ts';
import type { EndpointTraffic } from './traffic-totals.ts';
import type { IPFamily, ServicePortState, Snapshot } from './types.ts';

export type ProxyModeName = 'iptables' | 'userspace' | 'nftables';

/** Upstream's FullSyncPeriod: the longest time between two full syncs (pkg/proxy/util). */
export const FULL_SYNC_PERIOD_MS = 3_600_000;

export interface SyncContext {
  /** The runner's periodic resync (not triggered by a change): a mode checks the kernel for outside changes. */
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

/**
 * What a mode found changed, from outside the agent, in what it programmed. The agent counts it
 * (kubeproxy_ts_outside_changes_total), logs it (proxier/outside-changes.ts) and answers it with a full sync.
 */
export interface OutsideChange {
  readonly family: IPFamily;
  /** flushed: the tables were flushed (iptables' canary is gone); rules: rules or chains changed; table: the nftables table was deleted. */
  readonly kind: 'flushed' | 'rules' | 'table';
  /** The log line: what was found and what the mode does about it. */
  readonly message: string;
  /** Fields for the log line (e.g. the first differences found). */
  readonly fields?: Readonly<Record<string, unknown>>;
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
  /** How long the conntrack reconciler took after this sync, when it ran (iptables and nftables modes). */
  readonly conntrackReconcileMs?: number;
  readonly failures: readonly SyncFailure[];
  /** Set when this (periodic) sync found its rules changed from outside, and so was full. */
  readonly outsideChange?: OutsideChange;
}

/** A sync whose rules the kernel did not take (the error is its cause); nothing of it was applied. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly family: IPFamily;
  /** Whether it was a full sync (a failed partial one is counted separately, as upstream). */
  readonly full: boolean;
  /** The input the kernel's tool refused (iptables-restore input, an nft script), when the mode kept it. */
  readonly input: string | null;
  /** The 1-based line of `input` the tool named, or null. */
  readonly line: number | null;

  constructor(family: IPFamily, full: boolean, cause: unknown, refused: { input: string; line: number | null } | null = null) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.family = family;
    this.full = full;
    this.input = refused?.input ?? null;
    this.line = refused?.line ?? null;
  }
}

/**
 * What a mode shows operators, independent of how it programs the node: the
 * metrics server's /debug/rules and /debug/services and the traffic metrics
 * (src/servers/debug.ts, src/servers/traffic-metrics.ts). A mode keeps its
 * rules in a RulesRecord (proxier/rules-record.ts) and, when it counts
 * traffic, its totals in a TrafficTotals (proxier/traffic-totals.ts).
 */
export interface ModeInspection {
  /** Per family, in sync order: the rules last applied and the input last refused. */
  rules(): readonly FamilyRules[];
  /**
   * The mode's objects for a service port of the family's last successful sync (iptables: its KUBE-SVC/SVL/EXT/FW
   * chains and each endpoint's KUBE-SEP chain; nftables: its service-/local-/external-/firewall- chains, its keys in
   * the shared maps and sets and each endpoint's endpoint- chain; userspace: its listeners), or null when it made none.
   */
  objectsOf(family: IPFamily, state: ServicePortState): ServiceObjects | null;
  /** Traffic per endpoint since the agent started, or null when the mode does not count it (not asked to, or cannot). */
  traffic(): readonly EndpointTraffic[] | null;
  /**
   * Reads the kernel's counters now (joining a reading already running), then answers traffic() and what could not be
   * read ("IPv4: <error>"; that family's totals stay as last read): for modes whose counters only the agent can read
   * right (nftables: it zeroes them as it reads). Absent when traffic() is always fresh enough.
   */
  readTraffic?(): Promise<{ readonly traffic: readonly EndpointTraffic[] | null; readonly failures: readonly string[] }>;
  /** When the family's counters were last read (a reading of the mode's clock), or null: not yet; absent: not counted. */
  trafficReadAt?(family: IPFamily): number | null;
  /**
   * Packets per node nfacct counter the mode's rules count into (upstream's iptables mode: ct_state_invalid_dropped_pkts,
   * localhost_nps_accepted_pkts), read now; absent when the mode has none. A counter that does not exist is not in the map.
   */
  nfacctPackets?(): Promise<ReadonlyMap<string, number>>;
}

export interface ServiceObjects {
  /** What the service port has (chain names, "listener 0.0.0.0:36187", ...), in the mode's order. */
  readonly service: readonly string[];
  /** Endpoint ("ip:port") -> its own objects (a KUBE-SEP chain, an nftables endpoint chain or map entry), for the endpoints that have one. */
  readonly endpoints: ReadonlyMap<string, string>;
}

export interface ProxyMode {
  readonly name: ProxyModeName;
  /** The IP families this mode programs, in sync order. */
  readonly families: readonly IPFamily[];
  /** Programs one family; rejects (an ApplyError when the kernel refused the rules) on failure. */
  sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport>;
  /** Forces the next sync of every family to be a full one (e.g. after an outside flush). */
  requestFullSync(): void;
  /**
   * Starts the mode's background checks (outside damage, expiry sweeps). It calls `found` for an outside change,
   * which the agent reports and answers with a full sync of every family. Returns a stop function.
   */
  monitor(found: (change: OutsideChange) => void): () => void;
  /** Stops timers and sockets; leaves the rules in place. */
  close(): Promise<void>;
  /** What it shows operators (/debug/*, traffic metrics); absent when it shows nothing. */
  readonly inspect?: ModeInspection;
}
