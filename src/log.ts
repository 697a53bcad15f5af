/**
 * The real Logger (proxier/log.ts), through pino, in the two formats of component-base's --logging-format:
 * - text (the default, as upstream): klog's header and structured key=value pairs,
 *   `I1205 05:11:51.123456       1 iptables-mode.ts:245] "synced iptables rules" ipFamily="IPv4" full=true`;
 * - json: pino's JSON lines (`{"level":30,"time":"...","msg":"...",...}`; upstream's zap JSON has `ts`, `v` and
 *   `caller` instead).
 * -v maps to levels as klog users expect: 0-1 info, 2-3 debug, 4+ trace.
 */
import { basename } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../proxier/log.ts';

export type LoggingFormat = 'text' | 'json';

export function levelForVerbosity(v: number): pino.Level {
  if (v >= 4) return 'trace';
  if (v >= 2) return 'debug';
  return 'info';
}

export interface LogOptions {
  readonly verbosity: number;
  /** --logging-format; default json (tests read lines back). */
  readonly format?: LoggingFormat;
  /** File descriptor to write to: 1 (stdout, the agent) or 2 (stderr, commands whose stdout is data). */
  readonly fd?: 1 | 2;
  /** Tests pass a stream to read logs back (text lines, in text format). */
  readonly stream?: pino.DestinationStream;
}

const BASE_COMPONENT = 'kube-proxy-ts';

export function createLogger(opts: LogOptions): Logger {
  const level = levelForVerbosity(opts.verbosity);
  const options: pino.LoggerOptions = {
    level,
    base: { component: BASE_COMPONENT },
    timestamp: pino.stdTimeFunctions.isoTime,
    // An error is its message, as klog writes err="...": no stack traces in the logs, in either format.
    serializers: { err: (err: unknown) => (err instanceof Error ? err.message : err) },
  };
  // pino's own destination in both formats: it retries a full non-blocking pipe (EAGAIN) instead of throwing.
  const dest = opts.stream ?? pino.destination({ fd: opts.fd ?? 1, sync: true });
  if (opts.format !== 'text') return pino(options, dest);
  const pid = process.pid;
  return pino(
    // The caller is looked up as the line is logged (klog's file:line); epoch milliseconds keep the microseconds out.
    { ...options, timestamp: pino.stdTimeFunctions.epochTime, mixin: () => ({ [CALLER]: callerOf(new Error().stack) }) },
    { write: (json: string) => dest.write(klogLine(JSON.parse(json) as Record<string, unknown>, pid)) },
  );
}

const CALLER = '__caller';

/**
 * The first frame of a stack that is not the logger's own (this file, pino): `file.ts:line`. In the bundle the image
 * runs, pino is in the same file, so its frames are told apart by name.
 */
export function callerOf(stack: string | undefined): string {
  const frames = (stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?((?:file:\/\/)?[^\s()]+):(\d+):\d+\)?$/.exec(frame.trim());
    if (!m) continue;
    const file = m[1]!;
    if (file.includes('/node_modules/pino/') || file.endsWith('/src/log.ts') || /at (?:Pino\.|Object\.)?(?:LOG|write|mixin|callerOf)\b/.test(frame))
      continue;
    return `${basename(file)}:${m[2]}`;
  }
  return '???:1';
}

const SEVERITY: Readonly<Record<number, string>> = { 10: 'I', 20: 'I', 30: 'I', 40: 'W', 50: 'E', 60: 'F' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', CALLER]);

/** klog's header (formatHeader: severity, mmdd hh:mm:ss.uuuuuu, pid right-aligned in 7, file:line) and KVListFormat pairs. */
export function klogLine(record: Record<string, unknown>, pid: number): string {
  const t = new Date(typeof record['time'] === 'number' ? record['time'] : Date.now());
  const two = (n: number): string => String(n).padStart(2, '0');
  const header =
    `${SEVERITY[record['level'] as number] ?? 'I'}${two(t.getMonth() + 1)}${two(t.getDate())} ` +
    `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}.${String(t.getMilliseconds() * 1000).padStart(6, '0')} ` +
    `${String(pid).padStart(7)} ${typeof record[CALLER] === 'string' ? record[CALLER] : '???:1'}] `;
  let line = header + goQuote(typeof record['msg'] === 'string' ? record['msg'] : '');
  for (const [key, value] of Object.entries(record)) {
    if (OMIT.has(key) || value === undefined || (key === 'component' && value === BASE_COMPONENT)) continue;
    line += ` ${key}=${klogValue(value)}`;
  }
  return `${line}\n`;
}

/** Go's strconv.Quote (and %q) for the common cases: quotes, backslashes and control characters escaped. */
export function goQuote(s: string): string {
  const esc: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\t': '\\t', '\r': '\\r', '\n': '\\n' };
  return `"${s.replace(/["\\\t\r\n\x00-\x1f\x7f]/g, (c) => esc[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

/**
 * A value as klog writes it: strings quoted, a multi-line one as `<` + its lines indented by a tab + ` >`; numbers,
 * booleans and null bare; an error (pino's {type, message, stack}) as its quoted message; anything else as JSON.
 */
function klogValue(value: unknown): string {
  if (typeof value === 'string') return value.includes('\n') ? `<\n${value.replace(/\n$/, '').replace(/^/gm, '\t')}\n >` : goQuote(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return '<nil>';
  const message = typeof value === 'object' && 'stack' in value ? (value as { message?: unknown }).message : undefined;
  if (typeof message === 'string') return klogValue(message);
  return JSON.stringify(value);
}
