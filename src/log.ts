/**
 * The real Logger (proxier/log.ts), through pino, in the two formats of component-base's --logging-format:
 * - text (the default, as upstream): klog's header and structured key=value pairs,
 *   `I1205 05:11:51.123456       1 iptables-mode.ts:245] "synced iptables rules" ipFamily="IPv4" full=true`;
 * - json: component-base's zap JSON lines (logs/json NewJSONLogger through zapr): `ts` (epoch milliseconds), `caller`,
 *   `msg`, `v` (the verbosity of an info or warning line; errors have none) and the fields, an error's `err` last,
 *   `{"ts":1733375511123,"caller":"iptables-mode.ts:245","msg":"synced iptables rules","v":0,"ipFamily":"IPv4"}`.
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
  /** --logging-format; default text, as upstream's. */
  readonly format?: LoggingFormat;
  /** File descriptor to write to: 1 (stdout, the agent) or 2 (stderr, commands whose stdout is data). */
  readonly fd?: 1 | 2;
  /** Tests pass a stream to read logs back (text lines, in text format). */
  readonly stream?: pino.DestinationStream;
  /**
   * --log-text-split-stream / --log-json-split-stream: error lines go to stderr, the others to fd or stream, as
   * component-base splits them; without it every line goes to one place.
   */
  readonly splitStream?: boolean;
}

const BASE_COMPONENT = 'kube-proxy-ts';

export function createLogger(opts: LogOptions): Logger {
  const pid = process.pid;
  const line = opts.format === 'json' ? zapLine : (record: Record<string, unknown>) => klogLine(record, pid);
  // pino's own destination: it retries a full non-blocking pipe (EAGAIN) instead of throwing.
  const dest = opts.stream ?? pino.destination({ fd: opts.fd ?? 1, sync: true });
  const errors = opts.splitStream && (opts.stream || opts.fd !== 2) ? pino.destination({ fd: 2, sync: true }) : dest;
  return pino(
    {
      level: levelForVerbosity(opts.verbosity),
      base: { component: BASE_COMPONENT },
      // Epoch milliseconds: klog's header and zap's `ts` are both made from them.
      timestamp: pino.stdTimeFunctions.epochTime,
      // An error is its message, as klog writes err="...": no stack traces in the logs, in either format.
      serializers: { err: (err: unknown) => (err instanceof Error ? err.message : err) },
      // The caller is looked up as the line is logged (klog's file:line, zap's caller).
      mixin: () => ({ [CALLER]: callerOf(new Error().stack) }),
    },
    {
      write: (json: string) => {
        const record = JSON.parse(json) as Record<string, unknown>;
        (typeof record['level'] === 'number' && record['level'] >= 50 ? errors : dest).write(line(record));
      },
    },
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

/** zapr's verbosity of a pino level: trace is -v 4, debug -v 2, info and warn 0 (klog's warnings are V(0) lines in JSON). */
const ZAP_V: Readonly<Record<number, number>> = { 10: 4, 20: 2 };

/**
 * One line as component-base's JSON logger writes it (zapr over zap's JSON encoder, TimeKey ts, CallerKey caller,
 * MessageKey msg, no level key): an info or warning line carries `"v":N` after `msg`; an error line has no `v` and
 * its `err` comes after the other fields, as zapr adds it. Values keep their JSON types.
 */
export function zapLine(record: Record<string, unknown>): string {
  const level = typeof record['level'] === 'number' ? record['level'] : 30;
  const isError = level >= 50;
  const out: Record<string, unknown> = {
    ts: typeof record['time'] === 'number' ? record['time'] : Date.now(),
    caller: typeof record[CALLER] === 'string' ? record[CALLER] : '???:1',
    msg: typeof record['msg'] === 'string' ? record['msg'] : '',
  };
  if (!isError) out['v'] = ZAP_V[level] ?? 0;
  for (const [key, value] of Object.entries(record)) {
    if (OMIT.has(key) || key in out || (isError && key === 'err') || (key === 'component' && value === BASE_COMPONENT)) continue;
    out[key] = jsonValue(value);
  }
  if (isError && record['err'] !== undefined) out['err'] = jsonValue(record['err']);
  return `${JSON.stringify(out)}\n`;
}

/** An error (pino's {type, message, stack}) as its message; anything else as it is. */
function jsonValue(value: unknown): unknown {
  const message = typeof value === 'object' && value !== null && 'stack' in value ? (value as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : value;
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
  const message = jsonValue(value);
  return typeof message === 'string' ? klogValue(message) : JSON.stringify(value);
}
