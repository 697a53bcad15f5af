/**
 * "ip:port" server addresses (--healthz-bind-address, --metrics-bind-address)
 * as upstream reads them: a bare IP gets the default port appended
 * (proxyutil.AppendPortIfNeeded, applied by v1alpha1 defaulting and by
 * Options.Complete for the flags), then validateHostPort wants an IP and a
 * port. Upstream also refuses port 0; kube-proxy-ts takes it as "any free
 * port" (tests run several agents side by side).
 */
import { parseIP } from '../proxier/ip.ts';

export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;

/** "ip:port" or "[ipv6]:port" -> parts (host "" means 0.0.0.0), or null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535 || (host !== '' && !parseIP(host))) return null;
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** Upstream's AppendPortIfNeeded: "127.0.0.1" -> "127.0.0.1:port", "::1" -> "[::1]:port"; anything else unchanged. */
export function appendPortIfNeeded(address: string, port: number): string {
  if (address === '' || /^(?:\[[^\]]*\]|[^:]*):[^:]*$/.test(address)) return address;
  const ip = parseIP(address);
  if (!ip) return address;
  return ip.family === 'IPv4' && !address.includes(':') ? `${address}:${port}` : `[${address}]:${port}`;
}
