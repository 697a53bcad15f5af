/**
 * The real CommandRunner (proxier/exec.ts) over execa. A runner made with
 * `netns` runs every command inside that network namespace as
 * `ip netns exec NS cmd args...` (the agent in tests and the demo); the
 * namespace harness, which drives many namespaces with one runner, may also
 * name one per call.
 */
import { execa } from 'execa';
import type { CommandRunner, RunOptions, RunResult } from '../../proxier/exec.ts';

export interface ExecaRunOptions extends RunOptions {
  /** Network namespace name (as in `ip netns list`) to run this command in (overrides the runner's). */
  readonly netns?: string;
}

/** A CommandRunner that also takes a network namespace per call. */
export interface ExecaRunner extends CommandRunner {
  run(cmd: string, args: readonly string[], opts?: ExecaRunOptions): Promise<RunResult>;
}

export interface ExecaRunnerOptions {
  /** The iproute2 binary used for `netns` (default "ip"). */
  readonly ipCommand?: string;
  /** Largest stdout/stderr accepted, in characters (default 256 MiB; iptables-save of a big cluster is ~30 MB). */
  readonly maxBuffer?: number;
  /** Run every command in this network namespace (default: the caller's own). */
  readonly netns?: string;
}

/** Exit code reported when RunOptions.timeoutMs killed the command (as GNU timeout does). */
export const TIMEOUT_EXIT_CODE = 124;

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** `ip netns exec` reports an exec failure of the inner command this way (with exit code 1 or 255). */
const NETNS_EXEC_FAILED = /^exec of "([^"]*)" failed: (.*)$/m;

export function createExecaRunner(options: ExecaRunnerOptions = {}): ExecaRunner {
  const ipCommand = options.ipCommand ?? 'ip';
  const maxBuffer = options.maxBuffer ?? 256 * 1024 * 1024;
  return {
    ...(options.netns !== undefined ? { netns: options.netns } : {}),
    async run(cmd, args, given = {}) {
      const opts = given.netns === undefined && options.netns !== undefined ? { ...given, netns: options.netns } : given;
      const file = opts.netns === undefined ? cmd : ipCommand;
      const argv = opts.netns === undefined ? [...args] : ['netns', 'exec', opts.netns, cmd, ...args];
      const where = opts.netns === undefined ? '' : ` in network namespace ${opts.netns}`;
      const result = await execa(file, argv, {
        reject: false,
        input: opts.input ?? '',
        stripFinalNewline: false,
        maxBuffer,
        encoding: 'utf8',
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
        forceKillAfterDelay: 2000,
      });
      const stdout = String(result.stdout ?? '');
      const stderr = String(result.stderr ?? '');
      if (result.exitCode === undefined && !result.timedOut && result.signal === undefined) {
        // Spawn failure (ENOENT, EACCES, ...) or a broken pipe before exit.
        const reason = result.code ?? result.shortMessage;
        throw new Error(`cannot start ${JSON.stringify(file)}${where}: ${reason}`);
      }
      if (result.isMaxBuffer) {
        throw new Error(`${cmd}${where}: output exceeded ${maxBuffer} characters`);
      }
      if (opts.netns !== undefined && result.exitCode !== 0) {
        const m = NETNS_EXEC_FAILED.exec(stderr);
        if (m !== null && m[1] === cmd) throw new Error(`cannot start ${JSON.stringify(cmd)}${where}: ${m[2]}`);
      }
      if (result.timedOut) {
        return { code: TIMEOUT_EXIT_CODE, stdout, stderr: `${stderr}${cmd}${where} timed out after ${opts.timeoutMs} ms\n` };
      }
      if (result.exitCode === undefined) {
        const signal = result.signal ?? 'SIGKILL';
        return { code: 128 + (SIGNAL_NUMBERS[signal] ?? 9), stdout, stderr: `${stderr}${cmd}${where} killed by ${signal}\n` };
      }
      return { code: result.exitCode, stdout, stderr };
    },
  };
}
