/**
 * The listeners userspace mode should have (one per service port and role),
 * in two steps around the portal rules' update: open the new ones on a port
 * from the allocator, then (once no portal rule points at them any more)
 * close those no longer wanted (connections already accepted are left
 * alone). Per listener, its port or why it could not be opened (range
 * exhausted, address in use), without failing the others.
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

export interface OpenResult {
  readonly opened: readonly string[];
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

  /** Listener id -> port of every open listener. */
  get ports(): ReadonlyMap<string, number> {
    return new Map([...this.open].map(([id, e]) => [id, e.listener.port]));
  }

  /**
   * Opens the wanted listeners that are not open yet; the unwanted ones stay
   * open (closeUnwanted), so a new listener never gets a port that portal
   * rules still send another service's traffic to. Nor one of `avoid`
   * (ports that portal rules left by a previous process point at).
   */
  async openWanted(specs: readonly ListenerSpec[], avoid: ReadonlySet<number> = new Set()): Promise<OpenResult> {
    const reserved = [...avoid].filter((p) => this.allocator.reserve(p));
    const parked: OpenListener[] = [];
    const opened: string[] = [];
    const failed = new Map<string, string>();
    try {
      for (const spec of specs) {
        const entry = this.open.get(spec.id);
        if (entry?.spec.protocol === spec.protocol) continue;
        if (entry) await this.closeOne(spec.id);
        const r = await this.openOne(spec, avoid, parked);
        if ('error' in r) failed.set(spec.id, r.error);
        else {
          this.open.set(spec.id, r);
          opened.push(spec.id);
        }
      }
    } finally {
      for (const l of parked) await l.close();
      for (const p of reserved) this.allocator.release(p);
    }
    return { opened, failed };
  }

  /** Closes the listeners not wanted any more (connections already accepted are left alone) and frees their ports; returns their ids. */
  async closeUnwanted(specs: readonly ListenerSpec[]): Promise<string[]> {
    const wanted = new Map(specs.map((s) => [s.id, s.protocol]));
    const closed: string[] = [];
    for (const [id, entry] of [...this.open]) {
      if (wanted.get(id) === entry.spec.protocol) continue;
      await this.closeOne(id);
      closed.push(id);
    }
    return closed;
  }

  private async closeOne(id: string): Promise<void> {
    const entry = this.open.get(id)!;
    this.open.delete(id);
    await entry.listener.close();
    if (entry.allocated) this.allocator.release(entry.allocated);
  }

  /** A listener on a port of the range (or any free port); one the kernel chose among `avoid` is parked and another one opened. */
  private async openOne(
    spec: ListenerSpec,
    avoid: ReadonlySet<number>,
    parked: OpenListener[],
  ): Promise<{ spec: ListenerSpec; listener: OpenListener; allocated: number } | { error: string }> {
    for (let attempt = 0; attempt < MAX_BIND_ATTEMPTS; attempt++) {
      const a = this.allocator.allocate();
      if ('error' in a) return { error: a.error };
      let listener: OpenListener;
      try {
        listener = await this.opener(spec, a.port);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Another process holds this port: keep it marked used and draw another one.
        if (code === 'EADDRINUSE' && a.port !== 0) continue;
        if (a.port) this.allocator.release(a.port);
        return { error: `cannot listen for ${spec.id} (${spec.protocol}) on port ${a.port || 'any'}: ${(err as Error).message}` };
      }
      if (!avoid.has(listener.port)) return { spec, listener, allocated: a.port };
      // Held open until the batch is done, so that the kernel hands out another port.
      parked.push(listener);
    }
    return { error: `cannot listen for ${spec.id}: ${MAX_BIND_ATTEMPTS} ports of --proxy-port-range were in use by other processes` };
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.open.keys()]) await this.closeOne(id);
  }
}
