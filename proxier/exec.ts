/**
 * The command-runner seam: how the modes (iptables-restore, nft, conntrack,
 * sysctl files) run a program, as knftables' execer does for nft. Commands
 * are argv arrays, never shell strings. A non-zero exit is a normal result,
 * not an exception: callers decide what a failure means (iptables-restore's
 * stderr, for instance, is parsed for the failing line). A runner throws only
 * when the program cannot be started at all.
 *
 * src/system/exec.ts implements it with execa; a runner made for a network
 * namespace runs every command there, so nothing below src/ passes one along.
 */

export interface RunOptions {
  /** Written to the command's stdin (stdin is empty otherwise). */
  readonly input?: string;
  /** Kill the command after this long; the result then has code 124. */
  readonly timeoutMs?: number;
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
  /** The network namespace the runner was made for, when not the caller's own (for messages only). */
  readonly netns?: string;
}

/** A one-line description of a failed RunResult, for error messages. */
export function describeFailure(cmd: string, args: readonly string[], result: RunResult, netns?: string): string {
  const where = netns === undefined ? '' : ` (netns ${netns})`;
  const detail = result.stderr.trim() || result.stdout.trim() || '(no output)';
  return `${[cmd, ...args].join(' ')}${where} exited with code ${result.code}: ${detail}`;
}

/** A file's content (e.g. under /proc/sys), trimmed; null when it cannot be read. */
export async function readProcFile(runner: CommandRunner, path: string): Promise<string | null> {
  const r = await runner.run('cat', [path], { timeoutMs: 5000 }).catch(() => null);
  return r?.code === 0 ? r.stdout.trim() : null;
}

/** Writes a value to a file (e.g. a sysctl under /proc/sys); false when that failed. */
export async function writeProcFile(runner: CommandRunner, path: string, value: string): Promise<boolean> {
  return (await writeProcFileError(runner, path, value)) === null;
}

/** Writes a value to a file; null when that worked, else why not ("Permission denied", "Operation not supported"). */
export async function writeProcFileError(runner: CommandRunner, path: string, value: string): Promise<string | null> {
  const r = await runner.run('tee', [path], { input: value, timeoutMs: 5000 }).catch((err: unknown) => (err as Error).message);
  if (typeof r === 'string') return r;
  if (r.code === 0) return null;
  // tee says "tee: PATH: REASON"; keep the reason.
  const said = r.stderr.trim().split('\n').pop() ?? '';
  return said.startsWith(`tee: ${path}: `) ? said.slice(`tee: ${path}: `.length) : describeFailure('tee', [path], r);
}
