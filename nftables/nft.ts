/**
 * The nft adapter over the command-runner seam (proxier/exec.ts, as
 * knftables' execer): run a program with argv and stdin, get code, stdout
 * and stderr; a non-zero exit is a result, not an exception. A runner made
 * for a network namespace runs nft there.
 *
 * Nft runs `nft -f -` (one atomic transaction; or hands it to an NftSession),
 * `nft --check -f -`,
 * `nft -j list table <family> kube-proxy` (parsed into the model) and
 * `nft delete table`, and turns failures into NftError with the input line
 * nft complained about. FakeNft implements the same NftApi.
 */
import type { CommandRunner } from '../proxier/exec.ts';
import { nftFailure, NftError, NftStagingError } from './errors.ts';
import { TABLE_NAME, type NftFamily, type NftTable } from './model.ts';
import type { LiveNames } from './full-sync.ts';
import { chainsIn, ListParseError, namesIn, parseNftJson } from './parse-json.ts';
import { parseCounterValues, type CounterValue } from './counters.ts';

export type { CounterValue } from './counters.ts';

export interface NftApi {
  /** Applies a transaction atomically; throws NftError. */
  run(text: string): Promise<void>;
  /** Validates a transaction in the kernel without committing it; throws NftError. */
  check(text: string): Promise<void>;
  /** The family's kube-proxy table, rules in canonical text; null when there is none. */
  list(family: NftFamily): Promise<NftTable | null>;
  /** Deletes the family's table; false when there was none. */
  deleteTable(family: NftFamily): Promise<boolean>;
  /** The table's named counters with their values (--traffic-counters); null when there is no table. */
  counters(family: NftFamily, options?: CounterOptions): Promise<CounterValue[] | null>;
}

export interface CounterOptions {
  /** Zero each counter as it is read (`nft reset counters`): the values are what it counted since the last reset. */
  readonly reset?: boolean;
}

export interface ListNamesOptions {
  /**
   * false: a process of its own even when there is a session. The session runs one thing at a time, so a listing
   * there holds up the transactions behind it (~0.5 s at 10,000 services): the damage check, which runs while
   * events come in, lists beside the session; a full sync, which waits for its listing anyway, through it.
   */
  readonly session?: boolean;
}

export interface NftOptions {
  /** The nft binary (default "nft"). */
  readonly command?: string;
  /**
   * Applies transactions through one long-running `nft -i` (nft-session.ts)
   * instead of `nft -f -` each, and lists names through it when it can list.
   */
  readonly session?: { run(text: string): Promise<void>; list?(commands: readonly string[]): Promise<string[]> };
  /**
   * Told when the session could not take a transaction because it could not be staged (NftStagingError; the
   * transaction then runs as `nft -f -`), with why, and when one could be staged again (null): once per change.
   */
  readonly onStaging?: (problem: string | null) => void;
}

export class Nft implements NftApi {
  private readonly exec: CommandRunner;
  private readonly cmd: string;
  private readonly session: NftOptions['session'];
  private readonly onStaging: NftOptions['onStaging'];
  /** Why the last transaction could not be staged for the session; null when it could. */
  private stagingProblem: string | null = null;

  constructor(exec: CommandRunner, options: NftOptions = {}) {
    this.exec = exec;
    this.cmd = options.command ?? 'nft';
    this.session = options.session;
    this.onStaging = options.onStaging;
  }

  async run(text: string): Promise<void> {
    if (text === '') return;
    if (this.session) {
      try {
        await this.session.run(text);
        if (this.stagingProblem !== null) this.onStaging?.((this.stagingProblem = null));
        return;
      } catch (err) {
        if (!(err instanceof NftStagingError)) throw err;
        // Nothing reached nft: the same transaction through a process of its own, as upstream applies every one.
        if (this.stagingProblem === null) this.onStaging?.((this.stagingProblem = err.message));
      }
    }
    const r = await this.exec.run(this.cmd, ['-f', '-'], { input: text });
    if (r.code !== 0) throw nftFailure(`${this.cmd} -f -`, r, text);
  }

  async check(text: string): Promise<void> {
    if (text === '') return;
    const r = await this.exec.run(this.cmd, ['--check', '-f', '-'], { input: text });
    if (r.code !== 0) throw nftFailure(`${this.cmd} --check -f -`, r, text);
  }

  /** The raw JSON listing, or null when the table does not exist. */
  async listJson(family: NftFamily): Promise<string | null> {
    const args = ['-j', 'list', 'table', family, TABLE_NAME];
    const r = await this.exec.run(this.cmd, args);
    if (r.code === 0) return r.stdout;
    const err = nftFailure(`${this.cmd} ${args.join(' ')}`, r, null);
    if (err.kind === 'not-found') return null;
    throw err;
  }

  async list(family: NftFamily): Promise<NftTable | null> {
    const json = await this.listJson(family);
    return json === null ? null : parseNftJson(json, family, TABLE_NAME);
  }

  /**
   * Names of the table's chains, sets and maps, for finding stale objects on a
   * full sync, and the type, hook, priority and policy of its base chains (the
   * damage check compares them); null when the family has no kube-proxy table, or one holding no
   * chain, set or map (a full sync and a cold start write the same then). One
   * `nft -t -j` of `list chains`, `list sets`, `list maps` (one JSON
   * document a line): nft 1.0.6 loads its whole cache for `list tables`, and
   * every set's elements for `list sets` without -t (a request per anonymous
   * set) -- 6.7 s and 3.5 s at 10,000 services, where this takes ~1 s.
   * Through the session when there is one, unless told otherwise (the same
   * commands and flags, without starting a process: ~40 ms instead of ~150 ms
   * at 1,000 services, ~0.5 s instead of ~1.2 s at 10,000).
   */
  async listNames(family: NftFamily, options: ListNamesOptions = {}): Promise<LiveNames | null> {
    const commands = [`list chains ${family}`, `list sets ${family}`, `list maps ${family}`];
    let docs: string[];
    if (this.session?.list && options.session !== false) docs = await this.session.list(commands);
    else {
      // As one argument, not `-f -`: with -j, nft 1.0.6 opens /dev/stdin for JSON input, which fails on a socket.
      const args = ['-t', '-j', commands.join('; ')];
      const r = await this.exec.run(this.cmd, args);
      if (r.code !== 0) throw nftFailure(`${this.cmd} ${args.join(' ')}`, r, null);
      docs = r.stdout.split('\n').filter((l) => l.trim() !== '');
    }
    if (docs.length !== 3) throw new ListParseError(`expected 3 JSON documents from ${this.cmd} -t -j list ..., got ${docs.length}`);
    const { names: chains, bases } = chainsIn(docs[0]!, family);
    const sets = [
      ...namesIn(docs[1]!, 'set', family).map((name) => ({ name, kind: 'set' as const })),
      ...namesIn(docs[2]!, 'map', family).map((name) => ({ name, kind: 'map' as const })),
    ];
    return chains.length === 0 && sets.length === 0 ? null : { chains, sets, baseChains: bases };
  }

  /**
   * `nft -j list counters table <family> kube-proxy`, or with `reset` `nft -j reset counters ...` (each counter's
   * values returned and zeroed at once, in the kernel), in a process of its own (never through the session: no
   * transaction should wait behind it). nft 1.0.6 loads its whole cache of the table to list counters (~7 s at 10,000
   * services), not to reset them (~0.7 s for the same 50,000 counters; bench/nftables-counters.ts).
   */
  async counters(family: NftFamily, options: CounterOptions = {}): Promise<CounterValue[] | null> {
    const args = ['-j', options.reset ? 'reset' : 'list', 'counters', 'table', family, TABLE_NAME];
    const r = await this.exec.run(this.cmd, args);
    if (r.code !== 0) {
      const err = nftFailure(`${this.cmd} ${args.join(' ')}`, r, null);
      if (err.kind === 'not-found') return null;
      throw err;
    }
    return parseCounterValues(r.stdout, family, TABLE_NAME);
  }

  async deleteTable(family: NftFamily): Promise<boolean> {
    const args = ['delete', 'table', family, TABLE_NAME];
    const r = await this.exec.run(this.cmd, args);
    if (r.code === 0) return true;
    const err = nftFailure(`${this.cmd} ${args.join(' ')}`, r, null);
    if (err.kind === 'not-found') return false;
    throw err;
  }

  /** `nft --version`, e.g. "nftables v1.0.6 (Lester Gooch #5)". */
  async version(): Promise<string> {
    const r = await this.exec.run(this.cmd, ['--version']);
    if (r.code !== 0)
      throw new NftError({ what: `${this.cmd} --version`, kind: 'other', line: null, lineText: null, stderr: r.stderr, exitCode: r.code });
    return r.stdout.trim();
  }
}
