#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * kube-proxy-ts entry point: the only place that reads process.argv and the
 * environment, handles signals and sets the exit code.
 *
 * --max-semi-space-size=2 caps V8's young generation: at 10,000 services the
 * default lets the heap balloon to ~350 MB resident for ~120 MB of live data.
 */
import { enableCompileCache } from 'node:module';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

// Node's compile cache (src/entry.js, the executable, turns it on before this file loads and says why; this call is
// then a no-op): kept for `node src/main.ts`, which still reuses every other module's stripped TypeScript and V8 code
// (a second `render` starts in half the CPU time) but has loaded the type stripper for this file.
enableCompileCache(process.env['NODE_COMPILE_CACHE'] || new URL('../node_modules/.cache/kube-proxy-ts-compile', import.meta.url).pathname);
const { listenForStop } = await import('./system/stop-signals.ts');

const command = process.argv[2];
const isAgent = command === undefined || (command.startsWith('-') && command !== '--help' && command !== '-h');
// The agent's heap grows by a fixed 15 % between full collections, not V8's up to 4x (src/system/agent-heap.ts),
// set when the agent starts: after its modules are loaded, so that their cached code still matches V8's flags.
const agentHeap = isAgent ? await import('./system/agent-heap.ts') : null;
// The agent listens for SIGTERM/SIGINT from its first moment to its exit, so a
// signal always means an orderly stop, even while a child process runs or
// before the agent has started (src/system/stop-signals.ts says why).
// The other commands keep the default: a signal ends them.
const stop = isAgent
  ? listenForStop(process, (sig) => process.stderr.write(`kube-proxy-ts: ${sig} received again; still stopping (SIGKILL forces an exit)\n`))
  : null;

const { runCli } = await import('./commands.ts');
const { createLogger } = await import('./log.ts');
// Commands whose stdout is data (render) or a screen (top) log to stderr.
const logsToStderr = command === 'render' || command === 'top';
const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  // Commands whose stdout is data log to stderr; the agent logs to stdout, as a DaemonSet expects.
  makeLogger: ({ verbosity, loggingFormat, logSplitStream, vmodule, logInfoBufferSize, logFlushFrequencyMs, profiling }) =>
    createLogger({
      adjustable: profiling === true,
      verbosity,
      format: loggingFormat,
      fd: logsToStderr ? 2 : 1,
      splitStream: logSplitStream === true,
      vmodule: vmodule ?? '',
      infoBufferSize: logInfoBufferSize ?? 0,
      ...(logFlushFrequencyMs !== undefined ? { flushFrequencyMs: logFlushFrequencyMs } : {}),
    }),
  osHostname: () => process.env['NODE_NAME'] || hostname(),
  ...(stop ? { stopSignal: () => stop.stopped } : {}),
  setOomScoreAdj: (value) => {
    try {
      writeFileSync('/proc/self/oom_score_adj', String(value));
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  },
  ...(agentHeap ? { beforeAgentStart: (mode) => agentHeap.tuneAgentHeap(process.execArgv, mode) } : {}),
  ...(process.stdout.isTTY ? { terminal: { columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 } } : {}),
}).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
// Let stdout drain (render output can be megabytes into a pipe), then exit even if a library left a handle open.
process.stdout.write('', () => process.exit(code));
