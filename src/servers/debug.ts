/**
 * The metrics server's /debug pages (loopback by default, with
 * --metrics-bind-address), what upstream was asked for and never gave
 * (kubernetes/kubernetes#74677):
 * - /debug/rules: per IP family, the rules the mode last applied (as input
 *   of its tool: the text can be fed back to iptables-restore) and, if any,
 *   the last input the kernel refused, with the error and the line it named;
 * - /debug/services: services -> the mode's objects -> endpoints with their
 *   state (debug-services.ts);
 * - /debug/traffic: with --traffic-counters, packets and bytes per endpoint
 *   since the agent started counting (the traffic metrics' figures). The
 *   nftables mode reads its counters for the request (it zeroes them as it
 *   reads, so only the agent can tell their totals: `top --mode nftables`
 *   reads this page); the iptables mode answers its last reading. Either says
 *   when each family was read (`readAt`).
 * `?format=json` answers JSON, `?family=IPv4|IPv6` one family. The first two
 * pages share one token bucket (burst 5, then 1 per second), /debug/traffic
 * has its own (burst 10, then 10 per second: `top --interval 100ms`): beyond
 * it, 429 with Retry-After. Building the first two reads nothing from the
 * kernel; /debug/traffic runs at most one reading at a time (a request
 * during one waits for it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { epochMs, type Clock } from '../../proxier/clock.ts';
import type { ModeInspection, ProxyModeName } from '../../proxier/mode.ts';
import type { FamilyRules } from '../../proxier/rules-record.ts';
import { byServiceAndEndpoint, type EndpointTraffic } from '../../proxier/traffic-totals.ts';
import type { IPFamily, Snapshot } from '../../proxier/types.ts';
import { formatServicesTable, servicesTable } from './debug-services.ts';
import { TokenBucket } from './token-bucket.ts';

export interface DebugSources {
  readonly mode: ProxyModeName;
  readonly families: readonly IPFamily[];
  readonly inspect: ModeInspection | undefined;
  /** The snapshot of the family's last successful sync (Proxier.lastSynced). */
  lastSynced(family: IPFamily): Snapshot | null;
  /** The clock the records' `at` were read from: the rate limit's time, and each `at` shown as a wall-clock time. */
  readonly clock: Pick<Clock, 'now' | 'epochMs'>;
}

export const DEBUG_RATE = { burst: 5, perSecond: 1 } as const;
export const TRAFFIC_RATE = { burst: 10, perSecond: 10 } as const;

const PAGES = new Set(['/debug/rules', '/debug/services', '/debug/traffic']);

/** /debug/traffic as JSON: what `top --mode nftables` reads. */
export interface TrafficPage {
  readonly mode: ProxyModeName;
  /** The IP families the agent programs, the primary first. */
  readonly families: readonly IPFamily[];
  /** False when the agent runs without --traffic-counters (or its mode counts nothing): no endpoints then. */
  readonly counting: boolean;
  /** True when the kernel's counters were read for this answer; false: the mode's last reading. */
  readonly readNow: boolean;
  /** What that reading could not read ("IPv4: <error>"): those families' figures are their last reading's. */
  readonly failures: readonly string[];
  /**
   * Per family of the answer, when its counters were last read (RFC 3339; null: not read yet): how old the figures
   * are, the iptables mode reading every --traffic-counters-period and at each full sync. Empty when not counting.
   */
  readonly readAt: Readonly<Partial<Record<IPFamily, string | null>>>;
  readonly endpoints: readonly EndpointTraffic[];
}

/** The family of an endpoint "ip:port" / "[ip]:port". */
export const endpointFamily = (endpoint: string): IPFamily => (endpoint.startsWith('[') ? 'IPv6' : 'IPv4');

export async function trafficPage(
  src: Pick<DebugSources, 'mode' | 'inspect' | 'families'> & { readonly clock?: Pick<Clock, 'epochMs'> },
  families: readonly IPFamily[],
): Promise<TrafficPage> {
  const inspect = src.inspect;
  const readNow = inspect?.readTraffic !== undefined && inspect.traffic() !== null;
  const read = readNow ? await inspect!.readTraffic!() : { traffic: inspect?.traffic() ?? null, failures: [] };
  const all = read.traffic;
  const endpoints = (all ?? []).filter((t) => families.includes(endpointFamily(t.endpoint))).sort(byServiceAndEndpoint);
  const failures = read.failures.filter((f) => families.some((family) => f.startsWith(`${family}:`)));
  const iso = isoOf(src.clock);
  const readAt: Partial<Record<IPFamily, string | null>> = {};
  if (all !== null && inspect?.trafficReadAt)
    for (const f of families) {
      const at = inspect.trafficReadAt(f);
      readAt[f] = at === null ? null : iso(at);
    }
  return { mode: src.mode, families: src.families, counting: all !== null, readNow, failures, readAt, endpoints };
}

export function formatTraffic(page: TrafficPage): string {
  if (!page.counting)
    return `# kube-proxy-ts ${page.mode} mode counts no traffic per endpoint: the agent runs without --traffic-counters${page.mode === 'userspace' ? ' (userspace mode has no rules to count; see kubeproxy_ts_userspace_*)' : ''}\n`;
  const rows = [
    ['SERVICE', 'ENDPOINT', 'PACKETS', 'BYTES'],
    ...page.endpoints.map((t) => [t.service, t.endpoint, String(t.packets), String(t.bytes)]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    [
      `# kube-proxy-ts ${page.mode} mode: packets and bytes per endpoint since the agent started counting (${page.readNow ? 'read from the kernel for this answer' : 'its last reading'})`,
      ...Object.entries(page.readAt).map(([family, at]) => `# ${family}: ${at === null ? 'not read yet' : `read at ${at}`}`),
      ...page.failures.map((f) => `# NOT READ, its figures are the last reading's: ${f.replaceAll('\n', ' ')}`),
      ...rows.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ')),
    ].join('\n') + '\n'
  );
}

/** How a record's time is shown: RFC 3339, from a clock reading. */
type ShowTime = (reading: number) => string;
const isoOf =
  (clock: Pick<Clock, 'epochMs'> = {}): ShowTime =>
  (reading) =>
    new Date(epochMs(clock, reading)).toISOString();
const commented = (text: string): string =>
  text
    .split('\n')
    .map((l) => `# ${l}`.trimEnd())
    .join('\n');

/** /debug/rules as text: comment lines (#) around each family's rules, so an applied section is valid tool input as is. */
export function formatRules(mode: ProxyModeName, rules: readonly FamilyRules[], iso: ShowTime = isoOf()): string {
  const out = [`# kube-proxy-ts ${mode} mode`];
  for (const r of rules) {
    if (!r.applied) out.push(`# ${r.family}: nothing applied yet`);
    else {
      const a = r.applied;
      out.push(
        `# ${r.family}: applied at ${iso(a.at)} by a ${a.full ? 'full' : 'partial'} sync (${a.bytes} bytes written); ${r.syntax} input of every rule it owns now`,
        a.text().trimEnd(),
      );
    }
    if (!r.refused) {
      out.push(`# ${r.family}: no refused input`);
      continue;
    }
    const f = r.refused;
    const lines = f.input.split('\n');
    out.push(`# ${r.family}: REFUSED at ${iso(f.at)} (${f.full ? 'full' : 'partial'} sync):`, commented(f.error.trimEnd()));
    if (f.line !== null && f.line >= 1 && f.line <= lines.length) out.push(`# the line it named, ${f.line}: ${lines[f.line - 1]}`);
    out.push(`# the refused input (${f.input.length} bytes):`, commented(f.input.trimEnd()));
  }
  return out.join('\n') + '\n';
}

function rulesJson(rules: readonly FamilyRules[], iso: ShowTime): unknown {
  return rules.map((r) => ({
    family: r.family,
    syntax: r.syntax,
    applied: r.applied ? { at: iso(r.applied.at), full: r.applied.full, bytes: r.applied.bytes, text: r.applied.text() } : null,
    refused: r.refused ? { ...r.refused, at: iso(r.refused.at) } : null,
  }));
}

/** A handler for /debug/*: answers and returns true, or returns false for any other path. */
export function debugHandler(src: DebugSources, bucket = new TokenBucket(DEBUG_RATE), trafficBucket = new TokenBucket(TRAFFIC_RATE)) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (!PAGES.has(path)) return false;
    const text = (code: number, body: string, headers: Record<string, string> = {}): void =>
      void res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers }).end(body);
    const family = url.searchParams.get('family');
    if (family !== null && !src.families.includes(family as IPFamily)) {
      text(400, `unknown family "${family}": this ${src.mode} mode programs ${src.families.join(', ')}\n`);
      return true;
    }
    const traffic = path === '/debug/traffic';
    const rate = traffic ? TRAFFIC_RATE : DEBUG_RATE;
    const taken = (traffic ? trafficBucket : bucket).take(src.clock.now());
    if (!taken.ok) {
      text(429, `too many ${traffic ? path : '/debug'} requests: at most ${rate.burst} at once, then ${rate.perSecond} per second\n`, {
        'Retry-After': String(taken.retryAfterSeconds),
      });
      return true;
    }
    const families = family ? [family as IPFamily] : src.families;
    const json = url.searchParams.get('format') === 'json';
    const answer = (body: string): void => {
      if (json) res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' }).end(body + '\n');
      else text(200, body);
    };
    if (traffic) {
      trafficPage(src, families).then(
        (page) => answer(json ? JSON.stringify(page) : formatTraffic(page)),
        (err: unknown) => text(500, `cannot read the traffic counters: ${(err as Error).message}\n`),
      );
    } else if (path === '/debug/rules') {
      const rules = (src.inspect?.rules() ?? []).filter((r) => families.includes(r.family));
      const iso = isoOf(src.clock);
      answer(json ? JSON.stringify(rulesJson(rules, iso), null, 1) : formatRules(src.mode, rules, iso));
    } else {
      const table = servicesTable(families, (f) => src.lastSynced(f), src.inspect);
      answer(json ? JSON.stringify(table, null, 1) : formatServicesTable(table, (src.inspect?.traffic() ?? null) !== null));
    }
    return true;
  };
}
