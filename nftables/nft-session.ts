/**
 * One long-running `nft -i` that applies transactions, instead of a new
 * `nft -f -` process for each: starting nft costs ~20 ms here (fork, exec,
 * five shared libraries), as much as the whole of a small partial sync at
 * 1,000 services.
 *
 * How: each transaction is staged in a file and the process is sent
 * `include "<file>"` and then a marker line `%kube-proxy-sync-N`. nft reads
 * an included file with its scanner, as `nft -f` does, and runs it as one
 * batch; typed into `nft -i` directly, the text would go through libedit,
 * which reads stdin one byte per read(2) (3 KB: 3,000 syscalls, ~10 ms). The
 * marker is a syntax error ("unexpected junk", no netlink traffic): its
 * echo on stderr ends the transaction's output, and everything before it is
 * the transaction's errors, in `nft -f`'s `file:line:col: Error:` form.
 *
 * Listings go through the same process (list(): `list chains ip` and the
 * like, then a marker): it runs with -j and -t, so each list command prints
 * one JSON document, one line on stdout, as `nft -t -j list ...` does, without
 * a process start (~20 ms) or a fork of the agent (10-30 ms of its thread at
 * 1,000 services) and with nft's heap already grown: a full sync's listing at
 * 1,000 services takes ~40 ms this way against ~150 ms as a new `nft`. With
 * -j, nft tries each typed line as JSON first and, when it is not JSON,
 * parses it as `nft -f` would, so `include` and the marker behave as
 * without it. A listing ends when the marker's error block is on stderr and
 * one stdout line has come per command; a failed listing ends the process
 * (its stdout could still hold part of an answer) and the next request
 * starts a new one.
 *
 * The process keeps no state that matters between transactions: nft drops
 * its cache when the kernel's generation changed or a command failed. It is
 * restarted after `restartAfter` transactions (libedit keeps every line in
 * its history) and when it exits; a transaction pending when it exits fails
 * with kind "other" (it may or may not have been applied), so the caller
 * syncs fully, as after any failure. HOME points nowhere so no history file
 * is read or written; glibc.malloc.hugetlb=1 lets nft's malloc use huge
 * pages, which halves the cost of loading its whole cache (deletes) at
 * 10,000 services (19,000 page faults -> 1,000).
 */
import { NftError, nftFailure, NftStagingError } from './errors.ts';

/** A started process: lines go to its stdin. */
export interface NftChild {
  send(line: string): void;
  /** Ends its input (nft then exits). */
  close(): void;
}

export interface NftChildEvents {
  stderr(chunk: string): void;
  /** What it printed on stdout (the answers of list commands). */
  stdout(chunk: string): void;
  /** The process is gone (exit code, signal, or why it could not start). */
  exit(detail: string): void;
}

/** The seam: start a program, and put a transaction where that program can read it. */
export interface NftLauncher {
  start(cmd: string, args: readonly string[], env: Readonly<Record<string, string>>, events: NftChildEvents): NftChild;
  /** Writes `text` to a file only this process's user can write; returns its path (no double quotes in it). */
  stage(text: string): Promise<string>;
  /** Removes what stage() created. */
  dispose(): Promise<void>;
}

export interface NftSessionOptions {
  readonly command?: string;
  /** Transactions per process before a fresh one is started (default 1,000). */
  readonly restartAfter?: number;
  /**
   * Called with a transaction's length once nft has all of it (staged, and its include sent): until nft answers, this
   * process only waits, so what runs here costs the sync no time while nft works (the agent: a full garbage collection
   * after each large transaction, src/mode-nftables.ts). Not for listings.
   */
  readonly whileApplying?: (bytes: number) => void;
}

export const SESSION_ENV: Readonly<Record<string, string>> = { HOME: '/nonexistent', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };

interface Pending {
  readonly marker: string;
  readonly text: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** A listing: the stdout lines expected (one per command); null for a transaction. */
  readonly lines: number | null;
  /** Set once the marker's block has come without an error (a listing may still wait for stdout). */
  markerSeen: boolean;
}

/** The session's flags: interactive, JSON output, terse listings (sets without their elements). */
export const SESSION_ARGS: readonly string[] = ['-t', '-j', '-i'];

interface Running {
  readonly child: NftChild;
  runs: number;
  alive: boolean;
}

export class NftSession {
  private readonly launcher: NftLauncher;
  private readonly cmd: string;
  private readonly restartAfter: number;
  private readonly whileApplying: ((bytes: number) => void) | undefined;
  private proc: Running | null = null;
  private pending: Pending | null = null;
  private stderr = '';
  /** A listing's stdout so far, and how many complete lines it holds. */
  private stdout: string[] = [];
  private stdoutLines = 0;
  private serial = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Processes started so far (tests, metrics). */
  starts = 0;

  constructor(launcher: NftLauncher, options: NftSessionOptions = {}) {
    this.launcher = launcher;
    this.cmd = options.command ?? 'nft';
    this.restartAfter = Math.max(1, options.restartAfter ?? 1000);
    this.whileApplying = options.whileApplying;
  }

  /** Applies a transaction atomically; throws NftError. Transactions run one at a time, in call order. */
  run(text: string): Promise<void> {
    const next = this.queue.then(() => this.runOne(text));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Runs list commands (e.g. `list chains ip`, no newlines) one after another
   * and returns each one's JSON document, as `nft -t -j` prints it; throws
   * NftError when nft refused one. Queued with the transactions.
   */
  list(commands: readonly string[]): Promise<string[]> {
    const next = this.queue.then(() => this.listOne(commands));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the process and removes the staged file (a later run starts over). */
  async close(): Promise<void> {
    await this.queue;
    this.stop();
    await this.launcher.dispose();
  }

  private stop(): void {
    this.proc?.child.close();
    this.proc = null;
  }

  private async runOne(text: string): Promise<void> {
    if (text === '') return;
    let path: string;
    try {
      path = await this.launcher.stage(text);
    } catch (err) {
      throw new NftStagingError((err as Error).message);
    }
    if (path.includes('"')) throw new Error(`cannot include ${path}: it contains a double quote`);
    const proc = this.process();
    proc.runs++;
    const marker = `%kube-proxy-sync-${++this.serial}`;
    const answered = new Promise<void>((resolve, reject) => {
      this.pending = { marker, text, resolve, reject, lines: null, markerSeen: false };
      proc.child.send(`include "${path}"\n${marker}\n`);
    });
    try {
      this.whileApplying?.(text.length);
    } finally {
      // Even when the hook threw: the transaction's answer is still awaited before the next request.
      await answered;
    }
  }

  private async listOne(commands: readonly string[]): Promise<string[]> {
    if (commands.length === 0) return [];
    for (const c of commands) if (c.includes('\n')) throw new Error(`a list command is one line: ${JSON.stringify(c)}`);
    const proc = this.process();
    proc.runs++;
    const marker = `%kube-proxy-sync-${++this.serial}`;
    const text = commands.join('\n');
    this.stdout = [];
    this.stdoutLines = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        this.pending = { marker, text, resolve, reject, lines: commands.length, markerSeen: false };
        proc.child.send(`${text}\n${marker}\n`);
      });
    } catch (err) {
      // Part of an answer may still come on stdout: this process answers no more requests.
      if (this.proc === proc) this.stop();
      throw err;
    }
    const lines = this.stdout.join('').split('\n', commands.length);
    this.stdout = [];
    return lines;
  }

  private process(): Running {
    if (this.proc?.alive && this.proc.runs < this.restartAfter) return this.proc;
    this.stop();
    this.stderr = '';
    const proc: Running = { child: null as unknown as NftChild, runs: 0, alive: true };
    this.starts++;
    const child = this.launcher.start(this.cmd, SESSION_ARGS, SESSION_ENV, {
      stderr: (chunk) => {
        if (this.proc === proc) this.onStderr(chunk);
      },
      stdout: (chunk) => {
        // Only a listing's answer is kept; transactions print nothing there.
        if (this.proc !== proc || this.pending?.lines == null) return;
        this.stdout.push(chunk);
        for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) this.stdoutLines++;
        this.settleListing();
      },
      exit: (detail) => {
        proc.alive = false;
        if (this.proc !== proc) return;
        this.proc = null;
        const p = this.pending;
        this.pending = null;
        p?.reject(
          new NftError({
            what: `${this.cmd} -i`,
            kind: 'other',
            line: null,
            lineText: null,
            stderr:
              p?.lines == null
                ? `${this.stderr}${this.cmd} -i exited during a transaction (${detail}); it may or may not have been applied\n`
                : `${this.stderr}${this.cmd} -i exited during a listing (${detail})\n`,
            exitCode: 1,
          }),
        );
      },
    });
    (proc as { child: NftChild }).child = child;
    this.proc = proc;
    return proc;
  }

  /** Ends the pending transaction once its marker's error block (message, echo, caret line) is complete. */
  private onStderr(chunk: string): void {
    this.stderr += chunk;
    const p = this.pending;
    if (p === null) return;
    // The marker's block: "Error: syntax error, unexpected junk", the marker echoed, a caret line.
    const at = this.stderr.indexOf(`\n${p.marker}\n`);
    if (at < 0) return;
    const caretEnd = this.stderr.indexOf('\n', at + p.marker.length + 2);
    if (caretEnd < 0) return;
    const before = this.stderr.slice(0, at);
    const lineStart = before.lastIndexOf('\n') + 1;
    const output = before.slice(0, lineStart);
    this.stderr = this.stderr.slice(caretEnd + 1);
    if (/Error:/.test(output)) {
      this.pending = null;
      const what = p.lines === null ? `${this.cmd} -i (include)` : `${this.cmd} -t -j -i (${p.text.replaceAll('\n', '; ')})`;
      p.reject(nftFailure(what, { code: 1, stderr: output }, p.lines === null ? p.text : null));
      return;
    }
    p.markerSeen = true;
    if (p.lines === null) {
      this.pending = null;
      p.resolve();
    } else this.settleListing();
  }

  /** A listing is done when its marker has come and one stdout line per command (stdout and stderr race). */
  private settleListing(): void {
    const p = this.pending;
    if (p === null || p.lines === null || !p.markerSeen || this.stdoutLines < p.lines) return;
    this.pending = null;
    p.resolve();
  }
}
