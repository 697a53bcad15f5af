/**
 * The userspace mode: per service port, a listener of this process receives
 * the service's traffic (through the portal rules) and forwards each
 * connection to an endpoint it picks itself. A sync:
 * 1. turns the snapshot into listener specs and endpoint lists (the same
 *    endpoint selection as the iptables mode: traffic policies, terminating
 *    fallback; a service whose internal and external policies select
 *    different endpoints gets a second listener for external traffic);
 * 2. updates the load balancer (new connections follow at once);
 * 3. opens and closes listeners, holds node ports;
 * 4. writes the portal rules with one iptables-restore when they changed
 *    (every rule on a full sync, plus any missing jump rule).
 */
import type { FamilySyncResult, ModeBackend, SyncContext } from '../proxier/backend.ts';
import type { Endpoint, ServicePortState, Snapshot } from '../proxier/types.ts';
import { endpointString, externallyAccessible } from '../proxier/types.ts';
import { USERSPACE_CHAINS } from '../iptables/chains.ts';
import { removeKubeProxyRules } from '../iptables/cleanup.ts';
import type { Iptables } from '../iptables/iptables.ts';
import { jumpRuleChanges, jumpRuleLines } from '../iptables/jumps.ts';
import { toRestoreText } from '../iptables/ruleset.ts';
import { scanSave } from '../iptables/save-scan.ts';
import type { Logger } from '../proxier/log.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import { serviceIPs, type ConntrackFilter } from '../proxier/conntrack-plan.ts';
import { makeLocalDetector, type DetectLocalSettings } from '../iptables/local-detector.ts';
import { Listeners, type ListenerOpener, type ListenerSpec } from './listeners.ts';
import { NodePortHolder } from './port-holder.ts';
import { renderPortals, type PortalTarget } from './portal-rules.ts';
import type { RoundRobinBalancer } from './round-robin.ts';
import type { PortAllocator } from './port-allocator.ts';

export interface UserspaceBackendOptions {
  readonly iptables: Iptables;
  readonly balancer: RoundRobinBalancer;
  readonly allocator: PortAllocator;
  /** Creates a TCP or UDP proxy listener that picks endpoints through the balancer under the spec's id. */
  readonly opener: ListenerOpener;
  /** Address node-originated traffic is DNATed to when the Node has none of this family (an interface address). */
  readonly fallbackHostIP: () => string;
  readonly bindAddress: string;
  /** --detect-local-mode and its inputs: pods' traffic to external addresses of eTP Local services goes to all endpoints. */
  readonly detectLocal?: DetectLocalSettings;
  readonly logger: Logger;
  readonly now: () => number;
  /** Deletes UDP conntrack entries of a listener that closed or moved (they would keep NATing to its old port). */
  readonly conntrack?: Conntrack;
  /** Errors per service port (range exhausted, port conflicts): for metrics. */
  readonly onServiceError?: (serviceKey: string, message: string) => void;
}

interface Role {
  readonly spec: ListenerSpec;
  readonly endpoints: readonly Endpoint[];
}

/** The listeners a service port needs: internal, and external when its endpoints differ. */
export function listenerRoles(s: ServicePortState): Role[] {
  const sp = s.service;
  if (sp.protocol === 'SCTP') return [];
  const id = `${sp.key}/${sp.protocol}/${sp.port}`;
  const protocol = sp.protocol;
  const internal = (sp.internalPolicyLocal ? s.selection.local : s.selection.cluster) ?? [];
  const roles: Role[] = [{ spec: { id, protocol, service: sp.key }, endpoints: internal }];
  if (externallyAccessible(sp) && sp.externalPolicyLocal !== sp.internalPolicyLocal) {
    const external = (sp.externalPolicyLocal ? s.selection.local : s.selection.cluster) ?? [];
    roles.push({ spec: { id: `${id}#external`, protocol, service: sp.key }, endpoints: external });
  }
  return roles;
}

export class UserspaceBackend implements ModeBackend {
  readonly mode = 'userspace' as const;
  private readonly o: UserspaceBackendOptions;
  private readonly listeners: Listeners;
  private readonly holder: NodePortHolder;
  private lastRules = '';
  private needFull = true;
  private readonly sctpReported = new Set<string>();

  constructor(options: UserspaceBackendOptions) {
    this.o = options;
    this.listeners = new Listeners({ opener: options.opener, allocator: options.allocator });
    this.holder = new NodePortHolder({ family: options.iptables.family });
  }

  requestFullSync(): void {
    this.needFull = true;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<FamilySyncResult> {
    const start = this.o.now();
    const log = this.o.logger.child({ mode: 'userspace' });
    const roles = new Map<ServicePortState, Role[]>();
    for (const s of snapshot.services) {
      if (s.service.protocol === 'SCTP') {
        if (!this.sctpReported.has(s.service.key)) log.warn({ service: s.service.key }, 'SCTP is not supported by the userspace proxy; service port skipped');
        this.sctpReported.add(s.service.key);
        continue;
      }
      const r = listenerRoles(s);
      roles.set(s, r);
      for (const role of r) {
        this.o.balancer.update(role.spec.id, role.endpoints.map(endpointString), { timeoutSeconds: s.service.sessionAffinityTimeout });
      }
    }
    const specs = [...roles.values()].flatMap((r) => r.map((x) => x.spec));
    const result = await this.listeners.reconcile(specs);
    for (const id of result.closed) this.o.balancer.remove(id);
    await this.clearClosedUdpFlows(result.closed, ctx.previous);
    for (const spec of specs) {
      const why = result.failed.get(spec.id);
      if (why === undefined) continue;
      log.error({ listener: spec.id }, why);
      this.o.onServiceError?.(spec.service, why);
    }
    const conflicts = await this.holder.reconcile(
      snapshot.services.filter((s) => s.service.nodePort && roles.has(s)).map((s) => ({ port: s.service.nodePort, protocol: s.service.protocol as 'TCP' | 'UDP' })),
    );
    for (const [key, why] of conflicts) log.error({ nodePort: key }, why);

    const targets: PortalTarget[] = [];
    for (const [s, r] of roles) {
      const internalPort = result.ports.get(r[0]!.spec.id);
      if (internalPort === undefined) continue;
      const externalPort = r[1] ? result.ports.get(r[1].spec.id) : internalPort;
      if (externalPort === undefined) continue;
      targets.push({ service: s.service, internalPort, externalPort, nodePortHeld: this.holder.has(s.service.nodePort, s.service.protocol as 'TCP' | 'UDP') });
    }
    const desired = renderPortals(targets, {
      family: snapshot.family,
      hostIP: hostIPOf(snapshot) ?? this.o.fallbackHostIP(),
      bindAddress: this.o.bindAddress,
      localMatch: this.o.detectLocal ? (makeLocalDetector(this.o.detectLocal, snapshot.family, snapshot.node).ifLocal?.join(' ') ?? null) : null,
    });
    const full = this.needFull || ctx.periodic;
    const rules = toRestoreText(desired, { builtins: 'skip' });
    if (full || rules !== this.lastRules) {
      // Full syncs also put back jump rules someone deleted from the built-in chains.
      const extraLines = full ? jumpRuleLines(jumpRuleChanges(desired, scanSave(await this.o.iptables.save(['filter', 'nat']), snapshot.family).builtins)) : undefined;
      try {
        await this.o.iptables.restore(extraLines?.size ? toRestoreText(desired, { builtins: 'skip', extraLines }) : rules, { noflush: true, counters: false });
      } catch (err) {
        this.needFull = true;
        this.lastRules = '';
        throw err;
      }
      this.lastRules = rules;
      this.needFull = false;
    }
    const durationMs = this.o.now() - start;
    log.debug({ listeners: this.listeners.size, opened: result.opened.length, closed: result.closed.length, full, durationMs }, 'synced userspace proxy');
    return { family: snapshot.family, full, durationMs };
  }

  /**
   * UDP has no teardown: conntrack entries REDIRECTed to a listener that is
   * gone (service deleted, port changed: new listener) keep black-holing the
   * client's flow until they expire. Upstream deleted the cluster IP's entries
   * on deletion only; this also covers external IPs, node ports and moves.
   * The closed listeners' service ports come from the previous sync's state.
   */
  private async clearClosedUdpFlows(closed: readonly string[], previous: Snapshot | null): Promise<void> {
    if (!closed.length || !previous || !this.o.conntrack) return;
    const gone = new Set(closed);
    const filters: ConntrackFilter[] = [];
    for (const s of previous.services) {
      const sp = s.service;
      if (sp.protocol !== 'UDP' || !listenerRoles(s).some((r) => gone.has(r.spec.id))) continue;
      const reason = `${sp.key}: UDP listener closed`;
      for (const ip of serviceIPs(s)) filters.push({ family: previous.family, protocol: 'udp', origDst: ip, origDstPort: sp.port, reason });
      if (sp.nodePort) filters.push({ family: previous.family, protocol: 'udp', origDstPort: sp.nodePort, reason: `${reason} (node port)` });
    }
    if (!filters.length) return;
    const { deleted, errors } = await this.o.conntrack.deleteEntries(filters);
    for (const e of errors) this.o.logger.warn({ err: e }, 'cannot delete stale UDP conntrack entries');
    if (deleted) this.o.logger.info({ deleted }, 'deleted UDP conntrack entries of closed listeners');
  }

  async cleanup(): Promise<void> {
    await removeKubeProxyRules(this.o.iptables, { chains: (n) => (USERSPACE_CHAINS as readonly string[]).includes(n) });
    this.needFull = true;
  }

  /** Stops listening (open connections finish on their own); rules stay, as in iptables mode. */
  async close(): Promise<void> {
    await this.listeners.closeAll();
    await this.holder.closeAll();
  }
}

/** The node's primary IP of the snapshot's family (DNAT target of host portals), else its first address of that family. */
export function hostIPOf(snapshot: Snapshot): string | null {
  const v6 = snapshot.family === 'IPv6';
  const ofFamily = (ip: string): boolean => ip.includes(':') === v6;
  if (snapshot.node.primaryIP && ofFamily(snapshot.node.primaryIP)) return snapshot.node.primaryIP;
  return snapshot.node.addresses.find(ofFamily) ?? null;
}
