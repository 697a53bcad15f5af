/**
 * The userspace load balancer (no sockets): per service port, round robin
 * over the selected endpoints, with ClientIP affinity that honours the
 * Service's own timeout (upstream's userspace proxier ignored it, issue
 * #107398) and expires on idle (sliding), as upstream.
 *
 * Lists are reshuffled only when the set of endpoints really changes, so the
 * rotation and affinity records survive no-op updates.
 */

export interface AffinityPolicy {
  /** 0 = no affinity. */
  readonly timeoutSeconds: number;
}

interface Sticky {
  endpoint: string;
  lastUsed: number;
}

interface Entry {
  endpoints: string[];
  index: number;
  affinity: AffinityPolicy;
  sticky: Map<string, Sticky>;
}

export interface BalancerOptions {
  readonly now: () => number;
  /** [0, 1); injectable for deterministic tests. */
  readonly random?: () => number;
}

export type PickResult = { readonly endpoint: string } | { readonly error: 'unknown service port' | 'no endpoints' };

export class RoundRobinBalancer {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(opts: BalancerOptions) {
    this.now = opts.now;
    this.random = opts.random ?? Math.random;
  }

  /** Sets the endpoints ("ip:port") and affinity of a service port. */
  update(key: string, endpoints: readonly string[], affinity: AffinityPolicy): void {
    let e = this.entries.get(key);
    if (!e) {
      e = { endpoints: [], index: 0, affinity, sticky: new Map() };
      this.entries.set(key, e);
    }
    if (e.affinity.timeoutSeconds !== affinity.timeoutSeconds) {
      e.affinity = affinity;
      if (affinity.timeoutSeconds === 0) e.sticky.clear();
    }
    if (sameSet(e.endpoints, endpoints)) return;
    const keep = new Set(endpoints);
    for (const [client, s] of e.sticky) if (!keep.has(s.endpoint)) e.sticky.delete(client);
    e.endpoints = this.shuffle([...new Set(endpoints)]);
    e.index = 0;
  }

  remove(key: string): void {
    this.entries.delete(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * The endpoint for a new connection from clientIP. With resetAffinity (a
   * retry after a failed dial) the sticky record is skipped and overwritten.
   */
  next(key: string, clientIP: string, resetAffinity = false): PickResult {
    const e = this.entries.get(key);
    if (!e) return { error: 'unknown service port' };
    if (e.endpoints.length === 0) return { error: 'no endpoints' };
    const now = this.now();
    const ttlMs = e.affinity.timeoutSeconds * 1000;
    if (ttlMs > 0 && !resetAffinity) {
      const s = e.sticky.get(clientIP);
      if (s && now - s.lastUsed < ttlMs) {
        s.lastUsed = now;
        return { endpoint: s.endpoint };
      }
    }
    const endpoint = e.endpoints[e.index % e.endpoints.length]!;
    e.index = (e.index + 1) % e.endpoints.length;
    if (ttlMs > 0) e.sticky.set(clientIP, { endpoint, lastUsed: now });
    return { endpoint };
  }

  /** Drops affinity records idle for longer than their service port's timeout. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const e of this.entries.values()) {
      const ttlMs = e.affinity.timeoutSeconds * 1000;
      for (const [client, s] of e.sticky) {
        if (now - s.lastUsed >= ttlMs) {
          e.sticky.delete(client);
          dropped++;
        }
      }
    }
    return dropped;
  }

  private shuffle(list: string[]): string[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    return list;
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sb = new Set(b);
  if (new Set(a).size !== sb.size) return false;
  return a.every((x) => sb.has(x));
}
