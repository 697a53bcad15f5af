/**
 * The metrics server's /debug pages (loopback by default, with
 * --metrics-bind-address), what upstream was asked for and never gave
 * (kubernetes/kubernetes#74677):
 * - /debug/rules: per IP family, the rules the mode last applied (as input
 *   of its tool: the text can be fed back to iptables-restore) and, if any,
 *   the last input the kernel refused, with the error and the line it named;
 * - /debug/services: services -> the mode's objects -> endpoints with their
 *   state (debug-services.ts).
 * `?format=json` answers JSON, `?family=IPv4|IPv6` one family. Both pages
 * share one token bucket (burst 5, then 1 per second): beyond it, 429 with
 * Retry-After. Building them reads nothing from the kernel.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { epochMs, type Clock } from '../../proxier/clock.ts';
import type { ModeInspection, ProxyModeName } from '../../proxier/mode.ts';
import type { FamilyRules } from '../../proxier/rules-record.ts';
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
export function debugHandler(src: DebugSources, bucket = new TokenBucket(DEBUG_RATE)) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path !== '/debug/rules' && path !== '/debug/services') return false;
    const text = (code: number, body: string, headers: Record<string, string> = {}): void =>
      void res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers }).end(body);
    const family = url.searchParams.get('family');
    if (family !== null && !src.families.includes(family as IPFamily)) {
      text(400, `unknown family "${family}": this ${src.mode} mode programs ${src.families.join(', ')}\n`);
      return true;
    }
    const taken = bucket.take(src.clock.now());
    if (!taken.ok) {
      text(429, `too many /debug requests: at most ${DEBUG_RATE.burst} at once, then ${DEBUG_RATE.perSecond} per second\n`, {
        'Retry-After': String(taken.retryAfterSeconds),
      });
      return true;
    }
    const families = family ? [family as IPFamily] : src.families;
    const json = url.searchParams.get('format') === 'json';
    let body: string;
    if (path === '/debug/rules') {
      const rules = (src.inspect?.rules() ?? []).filter((r) => families.includes(r.family));
      const iso = isoOf(src.clock);
      body = json ? JSON.stringify(rulesJson(rules, iso), null, 1) : formatRules(src.mode, rules, iso);
    } else {
      const table = servicesTable(families, (f) => src.lastSynced(f), src.inspect);
      body = json ? JSON.stringify(table, null, 1) : formatServicesTable(table, (src.inspect?.traffic() ?? null) !== null);
    }
    if (json) res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' }).end(body + '\n');
    else text(200, body);
    return true;
  };
}
