/**
 * The userspace mode: per service port, a listener of this process receives
 * the service's traffic (through the portal rules) and forwards each
 * connection to an endpoint it picks itself. A sync:
 * 1. turns the snapshot into listener specs and endpoint lists (the same
 *    endpoint selection as the iptables mode: traffic policies, terminating
 *    fallback; a service whose internal and external policies select
 *    different endpoints gets a second listener for external traffic);
 * 2. updates the load balancer (new connections follow at once);
 * 3. opens new listeners, holds node ports;
 * 4. writes the portal rules with one iptables-restore when they changed
 *    (every rule on a full sync, plus any missing jump rule);
 * 5. only then closes the listeners no longer wanted, so no portal ever
 *    points at a closed port or at a port another listener took over.
 * Single-stack, as upstream: the family of --bind-address (IPv4 for the
 * default 0.0.0.0 when this node has IPv4 iptables). monitor() sweeps
 * expired ClientIP affinity records. For operators (`inspect`): the portal
 * rules applied and refused, and each service port's listeners.
 */
import type { Clock } from '../proxier/clock.ts';
import { every } from '../proxier/clock.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import { serviceIPs, type ConntrackFilter } from '../proxier/conntrack-plan.ts';
import type { Logger } from '../proxier/log.ts';
import {
  ApplyError,
  type ModeInspection,
  type ProxyMode,
  type ServiceObjects,
  type SyncContext,
  type SyncFailure,
  type SyncReport,
} from '../proxier/mode.ts';
import { RulesRecord } from '../proxier/rules-record.ts';
import { endpointString, type IPFamily, type ServicePortState, type Snapshot } from '../proxier/types.ts';
import { applyRules, readLiveTables } from '../iptables/apply.ts';
import type { Iptables } from '../iptables/iptables.ts';
import { makeLocalDetector, type DetectLocalSettings } from '../iptables/local-detector.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { hostIPOf, listenerRoles, type Role } from './listener-roles.ts';
import { Listeners, type ListenerOpener } from './listeners.ts';
import { NodePortHolder, type PortHolder } from './port-holder.ts';
import { parsePortRange, PortAllocator } from './port-allocator.ts';
import { livePortals, renderPortals, type LivePortal, type PortalTarget } from './portal-rules.ts';
import { proxyOpener, type UserspaceEvent } from './proxy-opener.ts';
import { RoundRobinBalancer } from './round-robin.ts';

export interface UserspaceModeOptions {
  /** The iptables of each family this node has; the mode uses the one of --bind-address's family. */
  readonly iptables: ReadonlyMap<IPFamily, Iptables>;
  /** --bind-address: where the listeners listen (0.0.0.0 / ::: everywhere, portals REDIRECT). */
  readonly bindAddress: string;
  /** --proxy-port-range: "" (or "0", "0-0") for any free port. */
  readonly portRange: string;
  /** --udp-timeout. */
  readonly udpIdleTimeoutMs: number;
  /** --detect-local-mode and its inputs: pods' traffic to external addresses of eTP Local services goes to all endpoints. */
  readonly detectLocal?: DetectLocalSettings;
}

export interface UserspaceModeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Deletes UDP conntrack entries of a listener that closed or moved (they would keep NATing to its old port). */
  readonly conntrack?: Pick<Conntrack, 'deleteEntries'>;
  /** Connection events and listeners opened and closed, with their service port. */
  readonly onEvent?: (service: string, e: UserspaceEvent) => void;
  /** Opens the listeners (default: TCP and UDP proxies picking through the balancer); tests open none. */
  readonly opener?: ListenerOpener;
  /** The balancer the listeners pick from (default: round robin on the clock). */
  readonly balancer?: RoundRobinBalancer;
  /** Holds the node ports open (default: sockets on every address of the family); tests hold none. */
  readonly portHolder?: PortHolder;
  /**
   * The address node-originated portal traffic is DNATed to when no interface has the node IP of the family: upstream's
   * ChooseHostInterface (userspace/host-ip.ts over this host's interfaces and routes); null when it finds none, a
   * rejection when they cannot be read. Asked again on full syncs.
   */
  readonly fallbackHostIP: (family: IPFamily) => string | null | Promise<string | null>;
}

/** How often expired ClientIP affinity records are dropped. */
const AFFINITY_SWEEP_MS = 10_000;

/** The family userspace mode serves: --bind-address's, IPv6 for 0.0.0.0 on a node with IPv6 iptables only. */
export function userspaceFamily(bindAddress: string, available: ReadonlySet<IPFamily>): IPFamily {
  if (bindAddress.includes(':')) return 'IPv6';
  if (bindAddress === '0.0.0.0' && !available.has('IPv4') && available.has('IPv6')) return 'IPv6';
  return 'IPv4';
}

export class UserspaceMode implements ProxyMode {
  readonly name = 'userspace' as const;
  readonly families: readonly IPFamily[];
  private readonly o: UserspaceModeOptions;
  private readonly d: UserspaceModeDeps;
  private readonly iptables: Iptables;
  private readonly balancer: RoundRobinBalancer;
  private readonly listeners: Listeners;
  private readonly holder: PortHolder;
  /** The last fallbackHostIP answer (loopback when it had none). */
  private chosenHostIP: string | null = null;
  private lastRules = '';
  private needFull = true;
  /** No sync has written the portal rules yet: those in the kernel, if any, are a previous process's. */
  private firstSync = true;
  private readonly sctpReported = new Set<string>();
  private readonly host: string;
  /** Listener id -> port, as of the last sync. */
  private ports: ReadonlyMap<string, number> = new Map();
  private readonly record: RulesRecord;
  readonly inspect: ModeInspection;

  constructor(options: UserspaceModeOptions, deps: UserspaceModeDeps) {
    const { bindAddress } = options;
    if (bindAddress === '127.0.0.1' || bindAddress === '::1') {
      throw new Error(
        `--bind-address ${bindAddress}: the userspace proxy cannot listen on localhost only (portal traffic arrives on the node's addresses)`,
      );
    }
    const family = userspaceFamily(bindAddress, new Set(options.iptables.keys()));
    const iptables = options.iptables.get(family);
    if (!iptables)
      throw new Error(
        `userspace mode needs ${family === 'IPv4' ? 'iptables' : 'ip6tables'} (the family of --bind-address ${bindAddress}), which does not work on this node`,
      );
    this.o = options;
    this.d = deps;
    this.families = [family];
    this.iptables = iptables;
    this.balancer = deps.balancer ?? new RoundRobinBalancer({ now: () => deps.clock.now() });
    const host = bindAddress === '0.0.0.0' && family === 'IPv6' ? '::' : bindAddress;
    this.host = host;
    this.record = new RulesRecord('iptables-restore', this.families);
    this.inspect = { rules: () => this.record.list(), objectsOf: (_f, state) => this.objectsOf(state), traffic: () => null };
    const range = options.portRange && options.portRange !== '0' && options.portRange !== '0-0' ? parsePortRange(options.portRange) : null;
    const opener =
      deps.opener ??
      proxyOpener({ host, balancer: this.balancer, udpIdleTimeoutMs: options.udpIdleTimeoutMs, ...(deps.onEvent ? { onEvent: deps.onEvent } : {}) });
    this.listeners = new Listeners({ opener, allocator: new PortAllocator(range) });
    this.holder = deps.portHolder ?? new NodePortHolder({ family });
    deps.logger.info(
      { ipFamily: family, listen: host, proxyPortRange: options.portRange || 'random', udpTimeoutMs: options.udpIdleTimeoutMs },
      'userspace proxy mode',
    );
  }

  requestFullSync(): void {
    this.needFull = true;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const start = this.d.clock.now();
    const log = this.d.logger.child({ mode: 'userspace' });
    const failures: SyncFailure[] = [];
    const roles = new Map<ServicePortState, Role[]>();
    for (const s of snapshot.services) {
      if (s.service.protocol === 'SCTP') {
        if (!this.sctpReported.has(s.service.key))
          log.warn({ service: s.service.key }, 'SCTP is not supported by the userspace proxy; service port skipped');
        this.sctpReported.add(s.service.key);
        continue;
      }
      const r = listenerRoles(s);
      roles.set(s, r);
      for (const role of r) {
        this.balancer.update(role.spec.id, role.endpoints.map(endpointString), { timeoutSeconds: s.service.sessionAffinityTimeout });
      }
    }
    const specs = [...roles.values()].flatMap((r) => r.map((x) => x.spec));
    // Portal rules a previous process left (killed, or stopped: rules stay)
    // point at its proxy ports, now free: no listener may open on one of
    // them before this sync's restore replaces those rules (upstream flushed
    // its chains at start, iptablesFlush). The full sync reads them anyway.
    const full = this.needFull || ctx.periodic;
    const saving = full ? readLiveTables(this.iptables) : null;
    const stale = this.firstSync && saving ? livePortals(await saving.catch(() => '')) : [];
    const avoid = new Set(stale.map((p) => p.proxyPort));
    // New listeners open first and unwanted ones close only once the portals
    // no longer point at them: a port is never reachable through the portal
    // of another service (upstream cleanupPortalAndProxy closes the portal
    // before it stops the proxy) and a moved service port is served
    // throughout. A listener that found no port in --proxy-port-range gets
    // another try once the closed ones gave theirs back (or the stale rules
    // are gone).
    let opened = await this.listeners.openWanted(specs, avoid);
    const nodePorts = snapshot.services.filter((s) => s.service.nodePort && roles.has(s));
    const conflicts = await this.holder.reconcile(
      nodePorts.map((s) => ({ port: s.service.nodePort, protocol: s.service.protocol as 'TCP' | 'UDP' })),
    );
    for (const [key, why] of conflicts) log.error({ nodePort: key }, why);
    let bytes = await this.applyPortals(snapshot, roles, full, saving, start, log);
    this.firstSync = false;
    const closed = await this.listeners.closeUnwanted(specs);
    // Before a retry can reopen their ports: a closed UDP listener's conntrack entries send its clients' datagrams to
    // its port as its portal rules did, and a refused restore below must not lose what only this sync knows closed.
    for (const id of closed) this.balancer.remove(id);
    let conntrackDeleted = await this.clearClosedUdpFlows(closed, ctx.previous, failures);
    conntrackDeleted += await this.clearStaleUdpFlows(stale, snapshot.family, failures);
    if ((closed.length || avoid.size) && opened.failed.size) {
      const again = await this.listeners.openWanted(specs.filter((s) => opened.failed.has(s.id)));
      opened = { opened: [...opened.opened, ...again.opened], failed: again.failed };
      if (again.opened.length) bytes += await this.applyPortals(snapshot, roles, false, null, start, log);
    }
    this.ports = this.listeners.ports;
    for (const spec of specs) {
      const why = opened.failed.get(spec.id);
      if (why === undefined) continue;
      log.error({ listener: spec.id }, why);
      failures.push({ stage: 'listener', service: spec.service, message: why });
    }
    const durationMs = this.d.clock.now() - start;
    log.debug({ listeners: this.listeners.size, opened: opened.opened.length, closed: closed.length, full, durationMs }, 'synced userspace proxy');
    return {
      family: snapshot.family,
      full,
      durationMs,
      objects: new Map(),
      written: new Map(),
      bytes,
      noLocalEndpoints: null,
      conntrackDeleted,
      failures,
    };
  }

  /**
   * Upstream's hostIP for --bind-address 0.0.0.0 (ChooseHostInterface, chosen once at its start), here asked again on
   * full syncs: the default route's interface may change. Without an answer: the last one, else loopback (upstream
   * refused to start).
   */
  private async hostInterfaceIP(family: IPFamily, refresh: boolean, log: Logger): Promise<string> {
    if (this.chosenHostIP !== null && !refresh) return this.chosenHostIP;
    const loopback = family === 'IPv6' ? '::1' : '127.0.0.1';
    try {
      const ip = await this.d.fallbackHostIP(family);
      if (ip === null && this.chosenHostIP !== loopback)
        log.warn(
          { ipFamily: family },
          `neither the default route's interface nor another has a global ${family} address; host portals DNAT to ${loopback}`,
        );
      this.chosenHostIP = ip ?? loopback;
    } catch (err) {
      log.error({ err: (err as Error).message }, "cannot read this host's interfaces to choose the host IP; host portals keep the last one");
      this.chosenHostIP ??= loopback;
    }
    return this.chosenHostIP;
  }

  /** Writes the portal rules of the open listeners when they changed (or on a full sync); returns the bytes restored. */
  private async applyPortals(
    snapshot: Snapshot,
    roles: ReadonlyMap<ServicePortState, Role[]>,
    full: boolean,
    saving: Promise<string> | null,
    start: number,
    log: Logger,
  ): Promise<number> {
    const ports = this.listeners.ports;
    const targets: PortalTarget[] = [];
    for (const [s, r] of roles) {
      const internalPort = ports.get(r[0]!.spec.id);
      if (internalPort === undefined) continue;
      const externalPort = r[1] ? ports.get(r[1].spec.id) : internalPort;
      if (externalPort === undefined) continue;
      targets.push({
        service: s.service,
        internalPort,
        externalPort,
        nodePortHeld: this.holder.has(s.service.nodePort, s.service.protocol as 'TCP' | 'UDP'),
      });
    }
    const detectLocal = this.o.detectLocal;
    const desired = renderPortals(targets, {
      family: snapshot.family,
      hostIP: hostIPOf(snapshot) ?? (await this.hostInterfaceIP(snapshot.family, full, log)),
      bindAddress: this.o.bindAddress,
      localMatch: detectLocal ? (makeLocalDetector(detectLocal, snapshot.family, snapshot.node).ifLocal?.join(' ') ?? null) : null,
    });
    const rules = toRestoreText(desired, { builtins: 'skip' });
    if (!full && rules === this.lastRules) return 0;
    let bytes = 0;
    try {
      // Full syncs also put back jump rules someone deleted from the built-in chains.
      const applied = await applyRules({
        iptables: this.iptables,
        full,
        desired,
        counters: false,
        logger: log,
        saving,
        plan: (live) => ({ batches: [live?.jumpEdits.size ? toRestoreText(desired, { builtins: 'skip', edits: live.jumpEdits }) : rules] }),
      });
      bytes = applied.batches[0]!.length;
    } catch (err) {
      this.needFull = true;
      this.lastRules = '';
      if (err instanceof ApplyError) this.record.refused(snapshot.family, this.d.clock.now(), err);
      throw err;
    }
    this.lastRules = rules;
    this.needFull = false;
    this.record.applied(snapshot.family, { at: start, full, bytes, text: () => toRestoreText(desired, { builtins: 'insert' }) });
    return bytes;
  }

  /**
   * UDP has no teardown: conntrack entries REDIRECTed to a listener that is
   * gone (service deleted, port changed: new listener) keep black-holing the
   * client's flow until they expire. Upstream deleted the cluster IP's entries
   * on deletion only; this also covers external IPs, node ports and moves.
   * The closed listeners' service ports come from the previous sync's state.
   */
  private async clearClosedUdpFlows(closed: readonly string[], previous: Snapshot | null, failures: SyncFailure[]): Promise<number> {
    if (!closed.length || !previous || !this.d.conntrack) return 0;
    const gone = new Set(closed);
    const filters: ConntrackFilter[] = [];
    for (const s of previous.services) {
      const sp = s.service;
      if (sp.protocol !== 'UDP' || !listenerRoles(s).some((r) => gone.has(r.spec.id))) continue;
      const reason = `${sp.key}: UDP listener closed`;
      for (const ip of serviceIPs(s)) filters.push({ family: previous.family, protocol: 'udp', origDst: ip, origDstPort: sp.port, reason });
      if (sp.nodePort) filters.push({ family: previous.family, protocol: 'udp', origDstPort: sp.nodePort, reason: `${reason} (node port)` });
    }
    return this.deleteFlows(filters, failures);
  }

  private async deleteFlows(filters: readonly ConntrackFilter[], failures: SyncFailure[]): Promise<number> {
    if (!filters.length || !this.d.conntrack) return 0;
    const { deleted, errors } = await this.d.conntrack.deleteEntries(filters);
    for (const e of errors) {
      this.d.logger.warn({ err: e }, 'cannot delete stale UDP conntrack entries');
      failures.push({ stage: 'conntrack', message: e });
    }
    if (deleted) this.d.logger.info({ deleted }, 'deleted UDP conntrack entries of closed listeners');
    return deleted;
  }

  /**
   * The previous process's UDP listeners are gone too (a restart moves every
   * listener): conntrack entries its portals REDIRECTed keep sending a
   * client's flow to a dead port for as long as the client keeps sending
   * (upstream left them). Deleted once this process's portals are in place:
   * only the entries answered by an old proxy port (--reply-port-src).
   */
  private async clearStaleUdpFlows(stale: readonly LivePortal[], family: IPFamily, failures: SyncFailure[]): Promise<number> {
    const filters = new Map<string, ConntrackFilter>();
    for (const p of stale) {
      if (p.protocol !== 'udp') continue;
      const reason = `UDP portal of the previous kube-proxy process (to proxy port ${p.proxyPort})`;
      const f: ConntrackFilter = {
        family,
        protocol: 'udp',
        ...(p.dst ? { origDst: p.dst } : {}),
        origDstPort: p.dport,
        replySrcPort: p.proxyPort,
        reason,
      };
      filters.set(`${p.dst ?? '*'} ${p.dport} ${p.proxyPort}`, f);
    }
    return this.deleteFlows([...filters.values()], failures);
  }

  /** A service port's listeners ("listener 0.0.0.0:36187/TCP", the second one for external traffic); no per-endpoint objects. */
  private objectsOf(state: ServicePortState): ServiceObjects | null {
    const service: string[] = [];
    for (const role of listenerRoles(state)) {
      const port = this.ports.get(role.spec.id);
      if (port === undefined) continue;
      const addr = this.host.includes(':') ? `[${this.host}]:${port}` : `${this.host}:${port}`;
      service.push(`listener ${addr}/${role.spec.protocol}${role.spec.id.endsWith('#external') ? ' (external traffic)' : ''}`);
    }
    return service.length ? { service, endpoints: new Map() } : null;
  }

  monitor(): () => void {
    return every(this.d.clock, AFFINITY_SWEEP_MS, () => this.balancer.sweep());
  }

  /** Stops listening (open connections finish on their own); rules stay, as in iptables mode. */
  async close(): Promise<void> {
    await this.listeners.closeAll();
    await this.holder.closeAll();
  }
}
