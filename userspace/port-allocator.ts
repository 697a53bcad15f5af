/**
 * Proxy-port allocation for userspace listeners (--proxy-port-range).
 * Empty, "0" or "0-0": the kernel picks a free port (listen on 0). Otherwise
 * "begin-end", "begin+offset" or a single port: ports are drawn at random
 * from the range and scanned upward from the draw; exhaustion is an error
 * value naming the range, never a crash.
 */

export interface PortRange {
  readonly base: number;
  readonly size: number;
}

/** Parses upstream's PortRange syntax; null for "let the kernel choose"; throws on malformed input. */
export function parsePortRange(text: string): PortRange | null {
  const s = text.trim();
  if (s === '' || s === '0' || s === '0-0') return null;
  let m = /^(\d+)-(\d+)$/.exec(s);
  let base: number;
  let last: number;
  if (m) {
    base = Number(m[1]);
    last = Number(m[2]);
  } else if ((m = /^(\d+)\+(\d+)$/.exec(s))) {
    base = Number(m[1]);
    last = base + Number(m[2]);
  } else if ((m = /^(\d+)$/.exec(s))) {
    base = last = Number(m[1]);
  } else {
    throw new Error(`invalid --proxy-port-range "${text}": expected begin-end, begin+offset or a single port`);
  }
  if (base < 1 || last > 65535 || last < base) throw new Error(`invalid --proxy-port-range "${text}": ports must satisfy 1 <= begin <= end <= 65535`);
  return { base, size: last - base + 1 };
}

export type Allocation = { readonly port: number } | { readonly error: string };

export class PortAllocator {
  private readonly range: PortRange | null;
  private readonly used = new Set<number>();
  private readonly random: () => number;

  constructor(range: PortRange | null, random: () => number = Math.random) {
    this.range = range;
    this.random = random;
  }

  /** A port to listen on; 0 means "any free port" (no range configured). */
  allocate(): Allocation {
    const r = this.range;
    if (!r) return { port: 0 };
    const start = Math.floor(this.random() * r.size);
    for (let i = 0; i < r.size; i++) {
      const port = r.base + ((start + i) % r.size);
      if (!this.used.has(port)) {
        this.used.add(port);
        return { port };
      }
    }
    return { error: `no free port left in --proxy-port-range ${r.base}-${r.base + r.size - 1} (${r.size} ports in use)` };
  }

  /** Marks a port busy after the kernel refused it (EADDRINUSE), so the next allocate() skips it; true if it was free. */
  reserve(port: number): boolean {
    if (!this.range || this.used.has(port)) return false;
    this.used.add(port);
    return true;
  }

  release(port: number): void {
    this.used.delete(port);
  }

  get inUse(): number {
    return this.used.size;
  }
}
