/**
 * healthCheckNodePort servers for externalTrafficPolicy Local services, as
 * upstream's ServiceHealthServer: one HTTP server per service on its health
 * check node port, answering any path with the number of this node's ready
 * endpoints: 200 when there is at least one (and the proxy is healthy), 503
 * otherwise, so cloud load balancers only send traffic to nodes that can
 * serve it locally.
 */

import { hostAddressesOf, primaryIPOf, selectNodePortAddresses } from '../../proxier/node-ports.ts';
import type { Snapshot } from '../../proxier/types.ts';
import type { ServerResponse } from 'node:http';
import { listen, type RunningServer } from './http-servers.ts';

export interface ServiceHealthTarget {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  readonly localEndpoints: number;
}

/**
 * Health-check targets of the families' snapshots: one per service (not per port), counting unique local ready
 * endpoint IPs per family. A service of either family is served (upstream runs one ServiceHealthServer per family's
 * proxier); a dual-stack one reports the larger family count, which is each family's count when its pods have an
 * address of both, as upstream's server of either family would.
 */
export function healthTargets(snapshots: readonly Snapshot[]): Map<string, ServiceHealthTarget> {
  const out = new Map<string, ServiceHealthTarget>();
  for (const snap of snapshots) {
    const ips = new Map<string, Set<string>>();
    const ports = new Map<string, { namespace: string; name: string; port: number }>();
    for (const s of snap.services) {
      const sp = s.service;
      if (!sp.healthCheckNodePort) continue;
      const key = `${sp.namespace}/${sp.name}`;
      const set = ips.get(key) ?? new Set<string>();
      for (const ep of s.endpoints) if (ep.isLocal && ep.ready) set.add(ep.ip);
      ips.set(key, set);
      ports.set(key, { namespace: sp.namespace, name: sp.name, port: sp.healthCheckNodePort });
    }
    for (const [key, p] of ports) {
      const count = ips.get(key)!.size;
      const seen = out.get(key);
      if (!seen || count > seen.localEndpoints) out.set(key, { ...p, localEndpoints: count });
    }
  }
  return out;
}

/**
 * Where each service's healthCheckNodePort server listens (upstream newServiceHealthServer, one per family's proxier,
 * serving that family's services): every address (0.0.0.0, both families) unless --nodeport-addresses restricts the
 * family's NodePorts, then this host's interface addresses inside it (NodePortAddresses.GetNodeIPs lists the
 * interfaces, net.InterfaceAddrs), "primary" being the node's primary IP of the family: only an address a socket can
 * bind, so a Node object's address that is not on an interface (a cloud node's NATed ExternalIP inside the CIDR) cannot
 * make every server of a service fail to open (they open all or none). The interface addresses are the snapshots' (read
 * once a sync period; hostAddressesOf). A service is served where the families it has select (a dual-stack one: both
 * selections, every address when either selects all), so a family that selects every address (the IPv6 one of an
 * IPv4-only node: no IPv6 CIDR, or "primary" without an IPv6 node IP) widens only its own services. Keyed as
 * healthTargets.
 */
export function serviceHealthHosts(nodePortAddresses: readonly string[], snapshots: readonly Snapshot[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const snap of snapshots) {
    const keys = new Set(snap.services.filter((s) => s.service.healthCheckNodePort).map((s) => `${s.service.namespace}/${s.service.name}`));
    if (keys.size === 0) continue;
    const selected = selectNodePortAddresses({
      cidrs: nodePortAddresses,
      family: snap.family,
      localAddresses: hostAddressesOf(snap),
      primaryIP: primaryIPOf(snap.node, snap.family),
    });
    for (const key of keys) {
      const hosts = out.get(key) ?? [];
      if (hosts[0] === '0.0.0.0') continue;
      if (selected.matchAll) out.set(key, ['0.0.0.0']);
      else out.set(key, [...hosts, ...selected.ips.filter((ip) => !hosts.includes(ip))]);
    }
  }
  return out;
}

/** hcHandler's body, tab-indented as upstream writes it (a health check matching the response text sees the same). */
export function serviceHealthBody(t: ServiceHealthTarget, proxyHealthy: boolean): string {
  const q = JSON.stringify;
  return `{\n\t"service": {\n\t\t"namespace": ${q(t.namespace)},\n\t\t"name": ${q(t.name)}\n\t},\n\t"localEndpoints": ${t.localEndpoints},\n\t"serviceProxyHealthy": ${proxyHealthy}\n}`;
}

export interface ServiceHealthOptions {
  /** Addresses to listen on when sync is given none (e.g. ["0.0.0.0"]). */
  readonly hosts: readonly string[];
  readonly proxyHealthy: () => boolean;
  readonly onError?: (target: ServiceHealthTarget, err: unknown) => void;
}

interface Entry {
  target: ServiceHealthTarget;
  /** The addresses it listens on; other ones make sync reopen it. */
  hosts: readonly string[];
  servers: RunningServer[];
}

export class ServiceHealthServers {
  private readonly o: ServiceHealthOptions;
  private readonly entries = new Map<string, Entry>();
  private queue: Promise<void> = Promise.resolve();

  constructor(options: ServiceHealthOptions) {
    this.o = options;
  }

  /**
   * Opens servers for new services on `hosts`, closes those of removed ones or whose port or addresses changed,
   * updates counts. Calls run one after another (each family's sync calls it, unawaited), so two never open the same
   * port at once.
   */
  sync(targets: ReadonlyMap<string, ServiceHealthTarget>, hosts?: ReadonlyMap<string, readonly string[]> | readonly string[]): Promise<void> {
    const run = this.queue.then(() => this.apply(targets, hosts));
    this.queue = run.catch(() => {});
    return run;
  }

  private async apply(
    targets: ReadonlyMap<string, ServiceHealthTarget>,
    given: ReadonlyMap<string, readonly string[]> | readonly string[] | undefined,
  ): Promise<void> {
    // Per service (serviceHealthHosts), one list for all, or the options' default.
    const hostsOf = (key: string): readonly string[] =>
      given === undefined ? this.o.hosts : Array.isArray(given) ? given : ((given as ReadonlyMap<string, readonly string[]>).get(key) ?? []);
    const sameHosts = (e: Entry, hosts: readonly string[]): boolean => e.hosts.length === hosts.length && e.hosts.every((h, i) => h === hosts[i]);
    for (const [key, e] of this.entries) {
      const t = targets.get(key);
      if (!t || t.port !== e.target.port || !sameHosts(e, hostsOf(key))) {
        await Promise.all(e.servers.map((s) => s.close()));
        this.entries.delete(key);
      }
    }
    for (const [key, target] of targets) {
      const existing = this.entries.get(key);
      if (existing) {
        existing.target = target;
        continue;
      }
      const hosts = hostsOf(key);
      const entry: Entry = { target, hosts, servers: [] };
      try {
        for (const host of hosts) entry.servers.push(await listen(host, target.port, (_req, res) => this.answer(entry.target, res)));
        if (entry.servers.length) this.entries.set(key, entry);
      } catch (err) {
        // listenAndServeAll: all addresses or none, so the next sync retries every one. Upstream also records a
        // FailedToStartServiceHealthcheck event.
        await Promise.all(entry.servers.map((s) => s.close()));
        this.o.onError?.(target, err);
      }
    }
  }

  /** hcHandler.ServeHTTP. */
  private answer(t: ServiceHealthTarget, res: ServerResponse): void {
    const healthy = this.o.proxyHealthy();
    const code = t.localEndpoints > 0 && healthy ? 200 : 503;
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      // For load balancers that weigh nodes by their local endpoints (upstream since 1.28, #118999).
      'X-Load-Balancing-Endpoint-Weight': String(t.localEndpoints),
    });
    res.end(serviceHealthBody(t, healthy));
  }

  /** Ports currently served, per service key. */
  ports(): Map<string, number> {
    return new Map([...this.entries].map(([k, e]) => [k, e.target.port]));
  }

  async close(): Promise<void> {
    await this.queue;
    for (const e of this.entries.values()) await Promise.all(e.servers.map((s) => s.close()));
    this.entries.clear();
  }
}
