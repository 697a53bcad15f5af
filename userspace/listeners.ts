/**
 * Reconciles the listeners userspace mode should have (one per service port
 * and role) with the open ones: opens new ones on a port from the allocator,
 * closes those no longer wanted (connections already accepted are left
 * alone), and reports, per listener, its port or why it could not be opened
 * (range exhausted, address in use) without failing the others.
 */
import type { PortAllocator } from './port-allocator.ts';

export interface ListenerSpec {
  /** Identity: a changed id means a new listener (e.g. the service port's number changed). */
  readonly id: string;
  readonly protocol: 'TCP' | 'UDP';
  /** The service port it serves ("namespace/name:port"), for logs and metrics. */
  readonly service: string;
}

export interface OpenListener {
  readonly port: number;
  /** Stops accepting; open connections are left alone. */
  close(): Promise<void>;
}

/** Opens a listener for a spec on a port (0 = any free port). Rejects with the socket error. */
export type ListenerOpener = (spec: ListenerSpec, port: number) => Promise<OpenListener>;

export interface ReconcileResult {
  readonly ports: ReadonlyMap<string, number>;
  readonly opened: readonly string[];
  readonly closed: readonly string[];
  /** Listeners that could not be opened, with the reason (retried at the next sync). */
  readonly failed: ReadonlyMap<string, string>;
}

const MAX_BIND_ATTEMPTS = 8;

export class Listeners {
  private readonly open = new Map<string, { spec: ListenerSpec; listener: OpenListener; allocated: number }>();
  private readonly opener: ListenerOpener;
  private readonly allocator: PortAllocator;

  constructor(opts: { opener: ListenerOpener; allocator: PortAllocator }) {
    this.opener = opts.opener;
    this.allocator = opts.allocator;
  }

  get size(): number {
    return this.open.size;
  }

  async reconcile(specs: readonly ListenerSpec[]): Promise<ReconcileResult> {
    const wanted = new Map(specs.map((s) => [s.id, s]));
    const closed: string[] = [];
    for (const [id, entry] of this.open) {
      if (wanted.get(id)?.protocol === entry.spec.protocol) continue;
      this.open.delete(id);
      closed.push(id);
      await entry.listener.close();
      if (entry.allocated) this.allocator.release(entry.allocated);
    }
    const opened: string[] = [];
    const failed = new Map<string, string>();
    for (const spec of specs) {
      if (this.open.has(spec.id)) continue;
      const r = await this.openOne(spec);
      if ('error' in r) failed.set(spec.id, r.error);
      else {
        this.open.set(spec.id, r);
        opened.push(spec.id);
      }
    }
    const ports = new Map([...this.open].map(([id, e]) => [id, e.listener.port]));
    return { ports, opened, closed, failed };
  }

  private async openOne(spec: ListenerSpec): Promise<{ spec: ListenerSpec; listener: OpenListener; allocated: number } | { error: string }> {
    for (let attempt = 0; attempt < MAX_BIND_ATTEMPTS; attempt++) {
      const a = this.allocator.allocate();
      if ('error' in a) return { error: a.error };
      try {
        return { spec, listener: await this.opener(spec, a.port), allocated: a.port };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Another process holds this port: keep it marked used and draw another one.
        if (code === 'EADDRINUSE' && a.port !== 0) continue;
        if (a.port) this.allocator.release(a.port);
        return { error: `cannot listen for ${spec.id} (${spec.protocol}) on port ${a.port || 'any'}: ${(err as Error).message}` };
      }
    }
    return { error: `cannot listen for ${spec.id}: ${MAX_BIND_ATTEMPTS} ports of --proxy-port-range were in use by other processes` };
  }

  async closeAll(): Promise<void> {
    for (const [id, e] of this.open) {
      this.open.delete(id);
      await e.listener.close();
      if (e.allocated) this.allocator.release(e.allocated);
    }
  }
}
