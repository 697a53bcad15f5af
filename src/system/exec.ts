/**
 * CommandRunner: the one seam through which kube-proxy-ts (and its test
 * harness) runs external programs. Commands are argv arrays, never shell
 * strings. A non-zero exit is a normal result, not an exception: callers
 * decide what a failure means (iptables-restore's stderr, for instance, is
 * parsed for the failing line). The runner throws only when the program
 * cannot be started at all.
 *
 * `netns` runs the command inside a named network namespace as
 * `ip netns exec NS cmd args...`.
 */
import { execa } from 'execa';

export interface RunOptions {
  /** Written to the command's stdin (stdin is empty otherwise). */
  readonly input?: string;
  /** Kill the command after this long; the result then has code 124. */
  readonly timeoutMs?: number;
  /** Network namespace name (as in `ip netns list`) to run the command in. */
  readonly netns?: string;
}

export interface RunResult {
  /** Exit code; 128+n when killed by signal n, 124 when the timeout killed it. */
  readonly code: number;
  /** Complete stdout, final newline kept. */
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

export interface ExecaRunnerOptions {
  /** The iproute2 binary used for `netns` (default "ip"). */
  readonly ipCommand?: string;
  /** Largest stdout/stderr accepted, in characters (default 256 MiB; iptables-save of a big cluster is ~30 MB). */
  readonly maxBuffer?: number;
}

/** Exit code reported when RunOptions.timeoutMs killed the command (as GNU timeout does). */
export const TIMEOUT_EXIT_CODE = 124;

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** `ip netns exec` reports an exec failure of the inner command this way (with exit code 1 or 255). */
const NETNS_EXEC_FAILED = /^exec of "([^"]*)" failed: (.*)$/m;

export function createExecaRunner(options: ExecaRunnerOptions = {}): CommandRunner {
  const ipCommand = options.ipCommand ?? 'ip';
  const maxBuffer = options.maxBuffer ?? 256 * 1024 * 1024;
  return {
    async run(cmd, args, opts = {}) {
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

/** A one-line description of a failed RunResult, for error messages. */
export function describeFailure(cmd: string, args: readonly string[], result: RunResult, netns?: string): string {
  const where = netns === undefined ? '' : ` (netns ${netns})`;
  const detail = result.stderr.trim() || result.stdout.trim() || '(no output)';
  return `${[cmd, ...args].join(' ')}${where} exited with code ${result.code}: ${detail}`;
}
