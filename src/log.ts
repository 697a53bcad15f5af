/**
 * The real Logger (proxier/log.ts), through pino, in the two formats of component-base's --logging-format:
 * - text (the default, as upstream): klog's header and structured key=value pairs,
 *   `I1205 05:11:51.123456       1 iptables-mode.ts:245] "synced iptables rules" ipFamily="IPv4" full=true`;
 * - json: component-base's zap JSON lines (logs/json NewJSONLogger through zapr): `ts` (epoch milliseconds), `caller`,
 *   `msg`, `v` (the verbosity of an info or warning line; errors have none) and the fields, an error's `err` last,
 *   `{"ts":1733375511123,"caller":"iptables-mode.ts:245","msg":"synced iptables rules","v":0,"ipFamily":"IPv4"}`.
 * -v maps to levels as klog users expect: 0-1 info, 2-3 debug, 4+ trace.
 */
import { readFileSync } from 'node:fs';
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
  /**
   * --vmodule (klog): `pattern=N,...`; the lines of a file whose name (without its extension) matches a pattern are
   * written up to verbosity N, when that is more than `verbosity`. The first matching pattern counts.
   */
  readonly vmodule?: string;
  /**
   * --log-*-info-buffer-size, with a split stream: info lines are held back until this many bytes are (at most
   * MAX_INFO_BUFFER), every flushFrequencyMs and at exit, as component-base's BufferedWriteSyncer and flush daemon do.
   */
  readonly infoBufferSize?: number;
  /** --log-flush-frequency (default 5 s). */
  readonly flushFrequencyMs?: number;
  /**
   * -v can be changed while the process runs (setVerbosity: upstream's /debug/flags/v, served with --profiling). Every
   * line is then made and those above -v dropped as they are written, so this costs what the hidden lines cost.
   */
  readonly adjustable?: boolean;
}

/** The loggers whose -v setVerbosity can change, with their current one. */
const adjustable = new WeakMap<Logger, { v: number }>();

/**
 * upstream's GlogSetter (klog's Level.Set, through /debug/flags/v): a new -v for a logger made `adjustable` and every
 * child it has or will have. Returns the reply upstream gives, or why not.
 */
export function setVerbosity(log: Logger, value: string): { ok: boolean; message: string } {
  const shown = value.trim();
  const v = /^[+-]?\d+$/.test(shown) ? Number(shown) : NaN;
  if (!Number.isSafeInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1)
    return { ok: false, message: `failed set klog.logging.verbosity ${shown}: strconv.ParseInt: parsing ${goQuote(shown)}: invalid syntax` };
  const control = adjustable.get(log);
  if (!control) return { ok: false, message: 'this logger cannot change its verbosity' };
  control.v = v;
  return { ok: true, message: `successfully set klog.logging.verbosity to ${shown}` };
}

/** The largest info buffer (upstream caps it at 2 GiB; a JavaScript string cannot be that long). */
export const MAX_INFO_BUFFER = 64 * 2 ** 20;

const BASE_COMPONENT = 'kube-proxy-ts';

export function createLogger(opts: LogOptions): Logger {
  const pid = process.pid;
  const line = opts.format === 'json' ? zapLine : (record: Record<string, unknown>) => klogLine(record, pid);
  // pino's own destination: it retries a full non-blocking pipe (EAGAIN) instead of throwing.
  const dest = opts.stream ?? pino.destination({ fd: opts.fd ?? 1, sync: true });
  const errors = opts.splitStream && (opts.stream || opts.fd !== 2) ? pino.destination({ fd: 2, sync: true }) : dest;
  const info =
    opts.splitStream && (opts.infoBufferSize ?? 0) > 0
      ? heldBack(dest, Math.min(opts.infoBufferSize!, MAX_INFO_BUFFER), opts.flushFrequencyMs ?? 5000)
      : dest;
  const vmodule = parseVModule(opts.vmodule ?? '');
  const fileVerbosity = new Map<string, number>();
  const verbosity = { v: opts.verbosity };
  // A line above -v is written only when its caller's file has that verbosity (klog's V with a vmodule set).
  const hidden = (record: Record<string, unknown>): boolean => {
    const v = ZAP_V[record['level'] as number] ?? 0;
    if (v <= verbosity.v) return false;
    const caller = typeof record[CALLER] === 'string' ? record[CALLER] : '';
    const file = caller.replace(/:\d+$/, '').replace(/\.[^.]*$/, '');
    let level = fileVerbosity.get(file);
    if (level === undefined) fileVerbosity.set(file, (level = vmodule.find((p) => p.match(file))?.level ?? 0));
    return level < v;
  };
  const filtered = vmodule.length > 0 || opts.adjustable === true;
  const logger = pino(
    {
      // With a vmodule, pino lets through what the most verbose pattern wants, and `hidden` filters per file; with an
      // adjustable -v, every line.
      level: opts.adjustable ? 'trace' : levelForVerbosity(Math.max(opts.verbosity, ...vmodule.map((p) => p.level))),
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
        if (filtered && hidden(record)) return;
        (typeof record['level'] === 'number' && record['level'] >= 50 ? errors : info).write(line(record));
      },
    },
  );
  if (opts.adjustable) adjustable.set(logger, verbosity);
  return logger;
}

const CALLER = '__caller';

/** Lines written to `dest` once `size` characters are held, every `flushMs` and when the process exits. */
function heldBack(dest: pino.DestinationStream, size: number, flushMs: number): pino.DestinationStream {
  let held = '';
  const flush = (): void => {
    if (held === '') return;
    const text = held;
    held = '';
    dest.write(text);
  };
  setInterval(flush, Math.max(flushMs, 1)).unref();
  process.on('exit', flush);
  return {
    write(text: string): void {
      held += text;
      if (held.length >= size) flush();
    },
  };
}

/** One bundle chunk's logging calls (build/callers.ts): generated line -> [column, `path/in/checkout.ts:line`] of each. */
export type ChunkCallers = Record<string, [number, string][]>;
/** dist/callers.json: chunk file name -> its logging calls. */
export type CallerTable = Readonly<Record<string, ChunkCallers>>;
export const CALLERS_FILE = 'callers.json';

let bundleCallers: CallerTable | null | undefined;

/** The table the build writes beside the bundle's chunks; null when running from the sources (there is none). */
function callerTable(): CallerTable | null {
  if (bundleCallers === undefined) {
    try {
      bundleCallers = JSON.parse(readFileSync(new URL(`./${CALLERS_FILE}`, import.meta.url), 'utf8')) as CallerTable;
    } catch {
      bundleCallers = null;
    }
  }
  return bundleCallers;
}

/**
 * The first frame of a stack that is not the logger's own (this file, pino): `file.ts:line`. In the bundle the image
 * runs, pino is in the same file, so its frames are told apart by name, and a chunk's line is named by the source file
 * and line it came from (the table; by default the one the build wrote), as from the sources.
 */
export function callerOf(stack: string | undefined, table: CallerTable | null = callerTable()): string {
  const frames = (stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?$/.exec(frame.trim());
    if (!m) continue;
    const file = m[1]!;
    if (file.includes('/node_modules/pino/') || file.endsWith('/src/log.ts') || /at (?:Pino\.|Object\.)?(?:LOG|write|mixin|callerOf)\b/.test(frame))
      continue;
    const calls = table?.[basename(file)]?.[m[2]!];
    if (calls) {
      const column = Number(m[3]);
      const call = calls.findLast(([c]) => c <= column) ?? calls[0]!;
      return basename(call[1]);
    }
    return `${basename(file)}:${m[2]}`;
  }
  return '???:1';
}

interface ModulePattern {
  readonly level: number;
  readonly match: (file: string) => boolean;
}

/**
 * klog's moduleSpec.Set (the value is checked in config.ts): `pattern=N` entries, empty ones and N = 0 skipped; a
 * pattern without metacharacters compared as it is, else matched as Go's filepath.Match (`*`, `?`, `[...]`, `\`)
 * against the file's name, as setV strips the directory and the extension.
 */
export function parseVModule(value: string): readonly ModulePattern[] {
  const out: ModulePattern[] = [];
  for (const entry of value.split(',')) {
    const [pattern, level] = entry.split('=');
    if (!pattern || !level || Number(level) <= 0) continue;
    if (!/[\\*?[\]]/.test(pattern)) {
      out.push({ level: Number(level), match: (file) => file === pattern });
      continue;
    }
    const re = globRegExp(pattern);
    out.push({ level: Number(level), match: (file) => re?.test(file) ?? false });
  }
  return out;
}

/** Go's filepath.Match pattern as a RegExp (separators never matched by `*`, `?` or a class); null when malformed, as Match's ErrBadPattern matches nothing. */
function globRegExp(pattern: string): RegExp | null {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= pattern.length) return null;
      re += escapeRegExp(pattern[i]!);
    } else if (c === '[') {
      const cls = classRegExp(pattern, i + 1);
      if (cls === null) return null;
      re += cls.re;
      i = cls.end;
    } else re += escapeRegExp(c);
  }
  return new RegExp(`^${re}$`);
}

/**
 * A character class of filepath.Match from just after its `[` (matchChunk): `^` negates; each item a character or a
 * range `lo-hi`, `\\` escaping the next character, an unescaped `-` or `]` where a character is due a bad pattern; the
 * first `]` after an item ends it. A range whose ends are reversed matches nothing. Returns the RegExp text and the
 * index of the closing `]`.
 */
function classRegExp(pattern: string, from: number): { re: string; end: number } | null {
  let p = from;
  const negated = pattern[p] === '^';
  if (negated) p++;
  const items: string[] = [];
  let n = 0;
  const char = (): string | null => {
    if (p >= pattern.length || pattern[p] === '-' || pattern[p] === ']') return null;
    if (pattern[p] === '\\') p++;
    return p < pattern.length ? pattern[p++]! : null;
  };
  for (;;) {
    if (p < pattern.length && pattern[p] === ']' && n > 0) break;
    const lo = char();
    if (lo === null) return null;
    let hi = lo;
    if (pattern[p] === '-') {
      p++;
      const h = char();
      if (h === null) return null;
      hi = h;
    }
    n++;
    if (lo <= hi) items.push(lo === hi ? escapeRegExp(lo) : `${escapeRegExp(lo)}-${escapeRegExp(hi)}`);
  }
  const body = items.join('');
  if (body === '') return { re: negated ? '[\\s\\S]' : '(?!)', end: p };
  return { re: `[${negated ? '^' : ''}${body}]`, end: p };
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

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
