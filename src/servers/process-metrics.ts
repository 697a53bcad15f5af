/**
 * The process metrics upstream's registry has (client_golang's process collector, which component-base's
 * legacyregistry registers) beyond prom-client's default ones, read from the same files at each scrape:
 * process_virtual_memory_max_bytes (/proc/self/limits, procfs Proc.Limits) and
 * process_network_{receive,transmit}_bytes_total (/proc/self/net/netstat, procfs Proc.Netstat: the IP octets of the
 * network namespace the process runs in, the node's for a hostNetwork agent).
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';

/** procfs parseUint: "unlimited" is RLIM64_INFINITY. */
const UNLIMITED = 18446744073709551615;

/** The soft "Max address space" limit of a limits file (columns two or more spaces apart, as procfs splits them). */
export function maxAddressSpace(limits: string): number | null {
  for (const line of limits.split('\n')) {
    const fields = line.split(/ {2,}/);
    if (fields[0] !== 'Max address space' || fields[1] === undefined) continue;
    return fields[1] === 'unlimited' ? UNLIMITED : Number(fields[1]);
  }
  return null;
}

/** IpExt's InOctets and OutOctets of a netstat file (a header line, then a value line); 0 for one it does not list. */
export function ipExtOctets(netstat: string): { in: number; out: number } {
  const lines = netstat.split('\n').filter((l) => l.startsWith('IpExt:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const get = (name: string): number => {
    const i = names.indexOf(name);
    return i > 0 && values[i] !== undefined ? Number(values[i]) : 0;
  };
  return { in: get('InOctets'), out: get('OutOctets') };
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Registers the three, each only where its file can be read (Linux); a scrape that cannot read it keeps the last value. */
export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  if (read('/proc/self/limits') !== null)
    new Gauge({
      name: 'process_virtual_memory_max_bytes',
      help: 'Maximum amount of virtual memory available in bytes.',
      registers,
      collect() {
        const text = read('/proc/self/limits');
        const max = text === null ? null : maxAddressSpace(text);
        if (max !== null) this.set(max);
      },
    });
  if (read('/proc/self/net/netstat') === null) return;
  const counter = (name: string, help: string, pick: (o: { in: number; out: number }) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        const text = read('/proc/self/net/netstat');
        if (text === null) return;
        this.reset();
        this.inc(pick(ipExtOctets(text)));
      },
    });
  counter('process_network_receive_bytes_total', 'Number of bytes received by the process over the network.', (o) => o.in);
  counter('process_network_transmit_bytes_total', 'Number of bytes sent by the process over the network.', (o) => o.out);
}
