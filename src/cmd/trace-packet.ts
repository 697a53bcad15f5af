/**
 * The packet `kube-proxy-ts trace` follows, whichever ruleset it runs
 * through: --dst parsed, the node's live addresses, and the origin (the node
 * itself or arriving from outside) from --origin or --src.
 */
import type { CommandRunner } from '../../proxier/exec.ts';
import { parseIP } from '../../proxier/ip.ts';
import { routesFromIpJson, type Route } from '../../proxier/route-table.ts';
import type { TracePacket } from '../../proxier/trace-result.ts';
import type { Protocol } from '../../proxier/types.ts';
import type { FlagValue } from '../flags.ts';
import { interfaceAddresses } from '../system/interfaces.ts';

export interface Destination {
  readonly ip: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export function parseDestination(text: string): Destination | null {
  const m = /^(?:\[([^\]]+)\]|([^:/[\]]+)):(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(text.trim());
  const ip = m ? parseIP(m[1] ?? m[2] ?? '') : null;
  if (!m || !ip || Number(m[3]) > 65535) return null;
  return { ip: ip.text, port: Number(m[3]), protocol: (m[4]?.toUpperCase() ?? 'TCP') as Protocol };
}

/** The node's addresses for the tracer (`ip -j addr show`); none when they cannot be read. */
export async function liveLocalAddresses(runner: CommandRunner): Promise<string[]> {
  return interfaceAddresses(runner).catch(() => []);
}

/**
 * The node's main routing table for one family (`ip -j -4|-6 route show`): what the tracer's `-o` tests, and where
 * an arriving packet's input interface comes from. undefined when it cannot be read: `-o` is then assumed to match.
 */
export async function liveRoutes(runner: CommandRunner, family: 'IPv4' | 'IPv6'): Promise<Route[] | undefined> {
  const r = await runner.run('ip', ['-j', family === 'IPv4' ? '-4' : '-6', 'route', 'show'], { timeoutMs: 5000 }).catch(() => null);
  if (!r || r.code !== 0) return undefined;
  try {
    return routesFromIpJson(r.stdout, family);
  } catch {
    return undefined;
  }
}

/**
 * The traced packet: --origin, else "local" when --src is one of the node's addresses (or loopback); an arriving
 * packet's input interface is --in-interface, else the device of the node's route back to --src (the reverse path).
 */
export function packetFor(
  src: string,
  dst: Destination,
  extra: ReadonlyMap<string, FlagValue>,
  local: readonly string[],
  /** The device the node routes `src` through: an arriving packet's input interface when --in-interface is not given. */
  routeTo?: (ip: string) => string | null | undefined,
): TracePacket {
  const origin = (extra.get('origin') as string) || (local.includes(src) || src === '127.0.0.1' || src === '::1' ? 'local' : 'external');
  const inInterface = (extra.get('in-interface') as string | undefined) || (origin === 'external' ? (routeTo?.(src) ?? undefined) : undefined);
  return {
    src,
    dst: dst.ip,
    protocol: dst.protocol,
    dport: dst.port,
    origin: origin as 'local' | 'external',
    ...(inInterface ? { inInterface } : {}),
  };
}
