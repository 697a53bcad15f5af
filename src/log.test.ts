import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { logFromHere } from '../test/vmodule-caller.ts';
import { callerOf, createLogger, klogLine, parseVModule, setVerbosity, zapLine } from './log.ts';

function textLogger(verbosity = 0) {
  let out = '';
  const log = createLogger({ verbosity, format: 'text', stream: { write: (s: string) => void (out += s) } });
  return { log, out: () => out };
}

describe("--logging-format=text: klog's text lines (component-base's default format)", () => {
  it("writes klog's header (severity, mmdd hh:mm:ss.uuuuuu, pid in 7 columns, file:line) and the message quoted", () => {
    const t = new Date(2026, 11, 5, 5, 1, 2, 345).getTime();
    expect(klogLine({ level: 30, time: t, msg: 'Using iptables Proxier', component: 'kube-proxy-ts', __caller: 'server.ts:66' }, 1)).toBe(
      'I1205 05:01:02.345000       1 server.ts:66] "Using iptables Proxier"\n',
    );
    // pino's levels: warn is W, error E, fatal F; debug and trace are info lines (klog's V levels).
    for (const [level, sev] of [
      [10, 'I'],
      [20, 'I'],
      [40, 'W'],
      [50, 'E'],
      [60, 'F'],
    ] as const)
      expect(klogLine({ level, time: t, msg: 'm' }, 4242)).toMatch(new RegExp(`^${sev}1205 05:01:02\\.345000    4242 \\?\\?\\?:1\\] "m"\\n$`));
  });

  it('writes fields as KVListFormat: strings quoted, numbers and booleans bare, a multi-line string as <\\n\\t...\\n >, an error as its message, lists and objects as JSON', () => {
    const line = klogLine(
      {
        level: 50,
        time: 0,
        msg: 'say "hi"\nthere',
        component: 'api-source',
        ipFamily: 'IPv4',
        full: true,
        durationMs: 12.5,
        none: null,
        drift: ['nat KUBE-SERVICES: 0 rules, 3 written'],
        err: { type: 'Error', message: 'exit 1', stack: 'Error: exit 1\n    at x (y.ts:1:1)' },
        stderr: 'line 1\nline 2\n',
      },
      7,
    );
    expect(line.slice(line.indexOf('] ') + 2)).toBe(
      '"say \\"hi\\"\\nthere" component="api-source" ipFamily="IPv4" full=true durationMs=12.5 none=<nil> ' +
        'drift=["nat KUBE-SERVICES: 0 rules, 3 written"] err="exit 1" stderr=<\n\tline 1\n\tline 2\n >\n',
    );
    // No stack traces in the logs.
    expect(line).not.toContain('at x');
  });

  it('names the line that logged (callerOf skips the logger and pino), through a real logger at every level it writes', () => {
    const { log, out } = textLogger(4);
    const here = Number(new Error().stack!.split('\n')[1]!.match(/:(\d+):\d+\)?$/)![1]);
    log.info({ n: 1 }, 'one');
    log.warn('two');
    log.child({ ipFamily: 'IPv6' }).debug('three');
    expect(out().split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(new RegExp(`^I\\d{4} [\\d:.]+ +${process.pid} log\\.test\\.ts:${here + 1}\\] "one" n=1$`)),
      expect.stringMatching(new RegExp(`^W\\d{4} [\\d:.]+ +${process.pid} log\\.test\\.ts:${here + 2}\\] "two"$`)),
      expect.stringMatching(new RegExp(`^I\\d{4} [\\d:.]+ +${process.pid} log\\.test\\.ts:${here + 3}\\] "three" ipFamily="IPv6"$`)),
    ]);
  });

  it('callerOf: in the bundle (pino in the same file) skips pino by its function names', () => {
    const stack = [
      'Error',
      '    at Object.mixin (/app/kube-proxy-ts.mjs:120:20)',
      '    at Pino.write (/app/kube-proxy-ts.mjs:900:30)',
      '    at Pino.LOG (/app/kube-proxy-ts.mjs:800:12)',
      '    at IptablesMode.sync (/app/kube-proxy-ts.mjs:31234:13)',
    ].join('\n');
    expect(callerOf(stack)).toBe('kube-proxy-ts.mjs:31234');
    expect(callerOf(undefined)).toBe('???:1');
  });

  it('writes a multi-line value and an error within klog text as their message; createLogger defaults to text, as the flag does', () => {
    let out = '';
    createLogger({ verbosity: 0, stream: { write: (s: string) => void (out += s) } }).error(
      { err: new Error('exit 1') },
      'Failed to execute iptables-restore',
    );
    expect(out).toMatch(/^E\d{4} .*\] "Failed to execute iptables-restore" err="exit 1"\n$/);
    expect(out).not.toContain('stack');
  });

  it('a slow reader of a non-blocking stdout (a container log pipe that fills up) gets every line: EAGAIN is waited out, not thrown', async () => {
    // process.stdout touched first, as the agent's io does: Node makes the pipe non-blocking.
    const script = `process.stdout; const { createLogger } = await import(${JSON.stringify(new URL('./log.ts', import.meta.url).pathname)});
      const log = createLogger({ verbosity: 0, format: 'text', fd: 1 });
      for (let i = 0; i < 5000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'line');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Nothing read for a while: the pipe's 64 KiB fill up at once.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 1500));
    let lines = 0;
    child.stdout.on('data', (d: Buffer) => (lines += d.toString().split('\n').length - 1));
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.once('close', r));
    expect([code, stderr]).toEqual([0, '']);
    expect(lines).toBe(5000);
  });
});

describe('--logging-format=json: component-base\'s zap JSON lines (logs/json NewJSONLogger, zapr LogInfoLevel "v", ErrorKey "err")', () => {
  function jsonLogger(verbosity = 0) {
    let out = '';
    const log = createLogger({ verbosity, format: 'json', stream: { write: (s: string) => void (out += s) } });
    return { log, lines: () => out.split('\n').filter(Boolean) };
  }

  it('writes ts (epoch milliseconds), caller, msg, then v for info lines and the fields in order, as klog_test.go expects them', () => {
    const { log, lines } = jsonLogger(4);
    const before = Date.now();
    const here = Number(new Error().stack!.split('\n')[1]!.match(/:(\d+):\d+\)?$/)![1]);
    log.info({ ipFamily: 'IPv4', full: true, count: 3, drift: ['a'] }, 'synced iptables rules');
    log.warn('test 1');
    log.child({ component: 'api-source' }).debug('three');
    const [info, warn, debug] = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    // Key order is the format: ts, caller, msg, v, then the fields.
    expect(lines()[0]).toBe(
      `{"ts":${String(info!['ts'])},"caller":"log.test.ts:${here + 1}","msg":"synced iptables rules","v":0,"ipFamily":"IPv4","full":true,"count":3,"drift":["a"]}`,
    );
    expect(info!['ts']).toBeGreaterThanOrEqual(before);
    expect(info!['ts']).toBeLessThanOrEqual(Date.now());
    // klog.Warning is a V(0) info line in JSON (klog_test.go "Warning"): no level key in either.
    expect(warn).toEqual({ ts: expect.any(Number), caller: `log.test.ts:${here + 2}`, msg: 'test 1', v: 0 });
    // -v 2 lines carry v 2; a child's component is a field.
    expect(debug).toEqual({ ts: expect.any(Number), caller: `log.test.ts:${here + 3}`, msg: 'three', v: 2, component: 'api-source' });
  });

  it('writes an error line without v, its err (the message, no stack) after the other fields (klog_test.go "ErrorS")', () => {
    const { log, lines } = jsonLogger();
    log.error({ err: new Error('fail'), count: 1 }, 'test');
    log.error('test 1');
    expect(lines().map((l) => l.replace(/^\{"ts":\d+(\.\d+)?,"caller":"[^"]+",/, '{'))).toEqual([
      '{"msg":"test","count":1,"err":"fail"}',
      '{"msg":"test 1"}',
    ]);
    // An err on a warning (klog.InfoS("...", "err", err)) is an ordinary field, in its place.
    expect(zapLine({ level: 40, time: 5, msg: 'm', err: 'x', n: 1, __caller: 'a.ts:1' })).toBe(
      '{"ts":5,"caller":"a.ts:1","msg":"m","v":0,"err":"x","n":1}\n',
    );
  });

  it('--log-json-split-stream / --log-text-split-stream: error lines to stderr, the others to stdout, through real pipes', async () => {
    const script = `const { createLogger } = await import(${JSON.stringify(new URL('./log.ts', import.meta.url).pathname)});
      for (const [format, splitStream] of [['json', true], ['text', true], ['text', false]]) {
        const log = createLogger({ verbosity: 0, format, fd: 1, splitStream });
        log.info({ format, splitStream }, 'info line'); log.warn('warning line'); log.error({ err: new Error('boom') }, 'error line');
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise<number | null>((r) => child.once('close', r))).toBe(0);
    // The caller is `[eval1]:4` here, which the klog header pattern of logLines does not take: the message is read off.
    const msgs = (out: string) =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => (l.startsWith('{') ? `json ${(JSON.parse(l) as { msg: string }).msg}` : `text ${/\] "([^"]*)"/.exec(l)?.[1]}`));
    expect(msgs(stdout)).toEqual([
      'json info line',
      'json warning line',
      'text info line',
      'text warning line',
      'text info line',
      'text warning line',
      'text error line',
    ]);
    expect(msgs(stderr)).toEqual(['json error line', 'text error line']);
  });

  it('--log-*-info-buffer-size: info lines held back until the buffer fills, the flush frequency passes or the process exits (zapcore.BufferedWriteSyncer, logs.FlushLogs); errors not held', async () => {
    // Each step is stamped on stderr when it happens; stdout's chunks are timed as they arrive.
    const script = `const { createLogger } = await import(${JSON.stringify(new URL('./log.ts', import.meta.url).pathname)});
      const log = createLogger({ verbosity: 0, format: 'text', fd: 1, splitStream: true, infoBufferSize: 600, flushFrequencyMs: 700 });
      const mark = (what) => process.stderr.write('MARK ' + what + ' ' + Date.now() + '\\n');
      mark('start');
      log.info('held 1'); log.info('held 2'); log.error('not held');
      await new Promise((r) => setTimeout(r, 1200));
      // A second logger that never flushes on time: only a full buffer or the exit write its lines.
      const full = createLogger({ verbosity: 0, format: 'text', fd: 1, splitStream: true, infoBufferSize: 600, flushFrequencyMs: 60000 });
      mark('filling');
      for (let i = 0; i < 8; i++) full.info('filler ' + i + ' ' + 'x'.repeat(60));
      await new Promise((r) => setTimeout(r, 300));
      full.info('held until exit');
      mark('exiting');
      process.exit(0);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: { at: number; text: string }[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() }));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise<number | null>((r) => child.once('close', r))).toBe(0);
    const marks = Object.fromEntries([...stderr.matchAll(/^MARK (\w+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
    expect(stderr).toMatch(/^E\d{4} .*\] "not held"$/m);
    const stdout = chunks.map((c) => c.text).join('');
    const msgs = stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => /\] "([^"]*)"/.exec(l)?.[1]);
    expect(msgs).toEqual(['held 1', 'held 2', ...Array.from({ length: 8 }, (_, i) => `filler ${i} ${'x'.repeat(60)}`), 'held until exit']);
    // The first two came together, one flush period after the start (not at once), before the fillers.
    const first = chunks.find((c) => c.text.includes('held 1'))!;
    expect(first.text).toContain('held 2');
    expect(first.at - marks['start']!).toBeGreaterThanOrEqual(600);
    expect(first.at).toBeLessThan(marks['filling']!);
    // The first fillers went out when the buffer filled (~100 bytes a line), long before the exit; the rest at the exit.
    expect(chunks.find((c) => c.text.includes('filler 0'))!.at).toBeLessThan(marks['exiting']!);
    expect(chunks.find((c) => c.text.includes('filler 0'))!.text).not.toContain('filler 7');
    expect(chunks.at(-1)!.text).toContain('held until exit');
  });

  it('hides lines above -v as the text format does', () => {
    const { log, lines } = jsonLogger(0);
    log.debug('hidden');
    log.info('shown');
    expect(lines().map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown']);
  });
});

describe("--vmodule: per-file verbosity, as klog's V() reads it (moduleSpec.Set, setV)", () => {
  /** The messages written with -v `verbosity` and `vmodule`: this file's debug line, then vmodule-caller.ts's. */
  function written(verbosity: number, vmodule: string): string[] {
    let out = '';
    const log = createLogger({ verbosity, format: 'text', vmodule, stream: { write: (s: string) => void (out += s) } });
    log.info('info here');
    log.debug('debug here');
    logFromHere(log, 'debug there');
    log.child({ ipFamily: 'IPv4' }).debug('child debug here');
    log.warn('warn here');
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => /\] "([^"]+)"/.exec(l)![1]!);
  }

  it('writes the debug lines of the files a pattern names, up to its level, and only those', () => {
    expect(written(0, '')).toEqual(['info here', 'warn here']);
    expect(written(0, 'vmodule-caller=2')).toEqual(['info here', 'debug there', 'warn here']);
    expect(written(0, 'log.test=2')).toEqual(['info here', 'debug here', 'child debug here', 'warn here']);
    // Level 1 is below a debug line's 2.
    expect(written(0, 'log.test=1')).toEqual(['info here', 'warn here']);
    expect(written(0, 'no-such-file=4')).toEqual(['info here', 'warn here']);
  });

  it("matches globs as Go's filepath.Match against the name without directory or extension", () => {
    expect(written(0, 'vmodule-*=2')).toEqual(['info here', 'debug there', 'warn here']);
    expect(written(0, 'log.tes?=2,vmodule-calle[a-s]=2')).toEqual(['info here', 'debug here', 'debug there', 'child debug here', 'warn here']);
    expect(written(0, 'vmodule-calle[^r]=2')).toEqual(['info here', 'warn here']);
    // The extension and the directory are not part of the name.
    expect(written(0, 'vmodule-caller.ts=2,test/vmodule-caller=2,*/vmodule-caller=2')).toEqual(['info here', 'warn here']);
    // A malformed pattern matches nothing (filepath.ErrBadPattern), and the others still apply.
    expect(written(0, 'log[=2,vmodule-caller=2')).toEqual(['info here', 'debug there', 'warn here']);
    // Escapes, in and out of classes; an unescaped - or ] where a class wants a character is malformed; a reversed range
    // matches nothing; a ] outside a class is itself.
    expect(written(0, 'vmodule-calle\\r=2')).toEqual(['info here', 'debug there', 'warn here']);
    expect(written(0, 'vmodule-calle[\\r]=2')).toEqual(['info here', 'debug there', 'warn here']);
    expect(written(0, 'vmodule-calle[\\q-\\s]=2')).toEqual(['info here', 'debug there', 'warn here']);
    for (const bad of ['vmodule-calle[-r]', 'vmodule-calle[r-]', 'vmodule-calle[]r]', 'vmodule-calle[s-q]', 'vmodule-caller]'])
      expect(written(0, `${bad}=2`), bad).toEqual(['info here', 'warn here']);
    expect(parseVModule('a]=2')[0]!.match('a]')).toBe(true);
    expect(parseVModule('[^s-q]=2')[0]!.match('x')).toBe(true);
  });

  it('takes the first matching pattern, skips level 0 entries, and never lowers -v', () => {
    expect(written(0, 'log.t*=1,log.test=2')).toEqual(['info here', 'warn here']);
    expect(written(0, 'log.test=0,log.*=2')).toEqual(['info here', 'debug here', 'child debug here', 'warn here']);
    expect(written(2, 'log.test=1')).toEqual(['info here', 'debug here', 'debug there', 'child debug here', 'warn here']);
    expect(parseVModule('a=0,,b=3').map((p) => p.level)).toEqual([3]);
  });
});

describe('-v changed while running (upstream GlogSetter through /debug/flags/v, with --profiling)', () => {
  it('raises and lowers -v for the logger and every child, made before or after', () => {
    let out = '';
    const log = createLogger({ verbosity: 0, format: 'text', adjustable: true, stream: { write: (s: string) => void (out += s) } });
    const child = log.child({ component: 'c' });
    const said = () => [...out.matchAll(/\] "([^"]+)"/g)].map((m) => m[1]);
    child.debug('hidden');
    expect(setVerbosity(log, '2')).toEqual({ ok: true, message: 'successfully set klog.logging.verbosity to 2' });
    child.debug('shown by the child');
    log.child({ component: 'later' }).debug('shown by a later child');
    expect(setVerbosity(log, ' 0\n')).toEqual({ ok: true, message: 'successfully set klog.logging.verbosity to 0' });
    child.debug('hidden again');
    log.info('info always');
    expect(said()).toEqual(['shown by the child', 'shown by a later child', 'info always']);
  });

  it("refuses what klog's Level.Set refuses, and a logger not made adjustable", () => {
    const log = createLogger({ verbosity: 0, format: 'text', adjustable: true, stream: { write: () => undefined } });
    expect(setVerbosity(log, 'two')).toEqual({
      ok: false,
      message: 'failed set klog.logging.verbosity two: strconv.ParseInt: parsing "two": invalid syntax',
    });
    expect(setVerbosity(log, '4294967296').ok).toBe(false);
    expect(setVerbosity(createLogger({ verbosity: 0, stream: { write: () => undefined } }), '2')).toEqual({
      ok: false,
      message: 'this logger cannot change its verbosity',
    });
  });
});
