/**
 * healthCheckNodePort servers for externalTrafficPolicy Local services, as
 * upstream's ServiceHealthServer: one HTTP server per service on its health
 * check node port, answering any path with the number of this node's ready
 * endpoints: 200 when there is at least one (and the proxy is healthy), 503
 * otherwise, so cloud load balancers only send traffic to nodes that can
 * serve it locally.
 */

import type { Snapshot } from '../../proxier/types.ts';
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

/** hcHandler's body, tab-indented as upstream writes it (a health check matching the response text sees the same). */
export function serviceHealthBody(t: ServiceHealthTarget, proxyHealthy: boolean): string {
  const q = JSON.stringify;
  return `{\n\t"service": {\n\t\t"namespace": ${q(t.namespace)},\n\t\t"name": ${q(t.name)}\n\t},\n\t"localEndpoints": ${t.localEndpoints},\n\t"serviceProxyHealthy": ${proxyHealthy}\n}`;
}

export interface ServiceHealthOptions {
  /** Addresses to listen on (e.g. ["0.0.0.0"], or the --nodeport-addresses IPs). */
  readonly hosts: readonly string[];
  readonly proxyHealthy: () => boolean;
  readonly onError?: (target: ServiceHealthTarget, err: unknown) => void;
}

interface Entry {
  target: ServiceHealthTarget;
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
   * Opens servers for new services, closes those of removed ones or whose port changed, updates counts. Calls run one
   * after another (each family's sync calls it, unawaited), so two never open the same port at once.
   */
  sync(targets: ReadonlyMap<string, ServiceHealthTarget>): Promise<void> {
    const run = this.queue.then(() => this.apply(targets));
    this.queue = run.catch(() => {});
    return run;
  }

  private async apply(targets: ReadonlyMap<string, ServiceHealthTarget>): Promise<void> {
    for (const [key, e] of this.entries) {
      const t = targets.get(key);
      if (!t || t.port !== e.target.port) {
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
      const entry: Entry = { target, servers: [] };
      for (const host of this.o.hosts) {
        try {
          entry.servers.push(
            await listen(host, target.port, (_req, res) => {
              const t = entry.target;
              const healthy = this.o.proxyHealthy();
              const code = t.localEndpoints > 0 && healthy ? 200 : 503;
              res.writeHead(code, {
                'Content-Type': 'application/json',
                'X-Content-Type-Options': 'nosniff',
                // For load balancers that weigh nodes by their local endpoints (upstream since 1.28, #118999).
                'X-Load-Balancing-Endpoint-Weight': String(t.localEndpoints),
              });
              res.end(serviceHealthBody(t, healthy));
            }),
          );
        } catch (err) {
          // Upstream records a FailedToStartServiceHealthcheck event; the next sync retries.
          this.o.onError?.(target, err);
        }
      }
      if (entry.servers.length) this.entries.set(key, entry);
    }
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
