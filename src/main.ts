#!/usr/bin/env node
/**
 * kube-proxy-ts entry point: the only place that reads process.argv and
 * calls process.exit.
 */
import { runCli } from './commands.ts';
import { createLogger } from './log.ts';

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  makeLogger: (verbosity) => createLogger({ verbosity, fd: 2 }),
}).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
});
process.exitCode = code;
