/**
 * The real NftLauncher (nftables/nft-session.ts): starts a long-running
 * program with node:child_process (argv, no shell; `ip netns exec NS` first
 * when a namespace is given, as the CommandRunner does) and stages
 * transactions in a private temporary directory (mode 0700) for it to
 * `include`: in the OS temporary directory, else /dev/shm. A pod with
 * `readOnlyRootFilesystem: true` has a read-only /tmp but still the runtime's
 * /dev/shm tmpfs; where neither can be written, prepare() says why, and the
 * agent applies each transaction with `nft -f -` instead (src/mode-nftables.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LaunchedChild {
  send(line: string): void;
  close(): void;
  /** The process id (its namespace's nft, `ip netns exec` execs it in place); undefined if it did not start. */
  readonly pid: number | undefined;
}

export interface ChildEvents {
  stderr(chunk: string): void;
  stdout(chunk: string): void;
  exit(detail: string): void;
}

export interface NftLauncherOptions {
  /** Network namespace name to run the program in (tests). */
  readonly netns?: string;
  /** The iproute2 binary used for `netns` (default "ip"). */
  readonly ipCommand?: string;
  /** Where the staging directory may go, the first that can be written (default the OS temporary directory, /dev/shm). */
  readonly dirs?: readonly string[];
}

/** The staged transaction's name in the staging directory. */
const FILE = 'transaction.nft';

/** A file system error's code (ENOSPC, EROFS, ...), else its message; a StagingError's message as it is. */
const reason = (err: unknown): string =>
  err instanceof StagingError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);

/** Why transactions cannot be staged: each candidate directory with its error. */
export class StagingError extends Error {
  override readonly name = 'StagingError';
}

export function createNftLauncher(options: NftLauncherOptions = {}) {
  let dir: string | null = null;
  /**
   * The staging directory: made in the first candidate where its file can be written (with `content`, the file's first
   * text); StagingError names each failure.
   */
  const staging = async (content = ''): Promise<string> => {
    if (dir !== null) return dir;
    const problems: string[] = [];
    for (const parent of options.dirs ?? [tmpdir(), '/dev/shm']) {
      let made: string | null = null;
      try {
        made = await mkdtemp(join(parent, 'kube-proxy-nft-'));
        await writeFile(join(made, FILE), content, { mode: 0o600 });
        dir = made;
        return made;
      } catch (err) {
        if (made !== null) await rm(made, { recursive: true, force: true }).catch(() => undefined);
        problems.push(`${parent}: ${reason(err)}`);
      }
    }
    throw new StagingError(`cannot stage nft transactions in ${problems.join(', ')}`);
  };
  return {
    /** Makes the staging directory now; null, or why it cannot be made (StagingError's message). */
    async prepare(): Promise<string | null> {
      try {
        await staging();
        return null;
      } catch (err) {
        if (err instanceof StagingError) return err.message;
        throw err;
      }
    },
    start(cmd: string, args: readonly string[], env: Readonly<Record<string, string>>, events: ChildEvents): LaunchedChild {
      const [file, argv] =
        options.netns === undefined ? [cmd, [...args]] : [options.ipCommand ?? 'ip', ['netns', 'exec', options.netns, cmd, ...args]];
      const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      let gone = false;
      const exit = (detail: string) => {
        if (gone) return;
        gone = true;
        events.exit(detail);
      };
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => events.stderr(chunk));
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => events.stdout(chunk));
      child.stdin.on('error', () => undefined); // EPIPE when it died: 'close' reports it
      child.on('error', (err) => exit(`cannot start ${JSON.stringify(file)}: ${err.message}`));
      child.on('close', (code, signal) => exit(signal === null ? `exit code ${code}` : `killed by ${signal}`));
      return {
        send: (line) => {
          if (!gone) child.stdin.write(line);
        },
        close: () => child.stdin.end(),
        pid: child.pid,
      };
    },
    async stage(text: string): Promise<string> {
      try {
        const path = join(await staging(), FILE);
        await writeFile(path, text, { mode: 0o600 });
        return path;
      } catch (first) {
        // A long-running agent's directory can go (systemd-tmpfiles ages out /tmp for an agent run as a unit; a
        // reaper) or its filesystem fill up: once more, in a new directory in the first candidate that takes this
        // transaction (/dev/shm when /tmp is full).
        const old = dir;
        dir = null;
        if (old !== null) await rm(old, { recursive: true, force: true }).catch(() => undefined);
        try {
          return join(await staging(text), FILE);
        } catch (second) {
          throw new StagingError(`cannot stage a transaction (${text.length} bytes): ${reason(first)}; in a new directory: ${reason(second)}`);
        }
      }
    },
    async dispose(): Promise<void> {
      if (dir !== null) await rm(dir, { recursive: true, force: true });
      dir = null;
    },
  };
}
