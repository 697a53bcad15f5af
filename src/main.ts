#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * kube-proxy-ts entry point: the only place that reads process.argv and the
 * environment, handles signals and sets the exit code.
 *
 * --max-semi-space-size=2 caps V8's young generation: at 10,000 services the
 * default lets the heap balloon to ~350 MB resident for ~120 MB of live data.
 */
import { hostname } from 'node:os';
import { runCli } from './commands.ts';
import { createLogger } from './log.ts';

const stopSignal = (): Promise<string> =>
  new Promise((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
  });

const isRender = process.argv[2] === 'render';
const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  // Commands whose stdout is data log to stderr; the agent logs to stdout, as a DaemonSet expects.
  makeLogger: (verbosity) => createLogger({ verbosity, fd: isRender ? 2 : 1 }),
  osHostname: () => process.env['NODE_NAME'] || hostname(),
  stopSignal,
}).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
// Let stdout drain (render output can be megabytes into a pipe), then exit even if a library left a handle open.
process.stdout.write('', () => process.exit(code));
