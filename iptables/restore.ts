/**
 * The real Iptables adapter: iptables-restore / iptables-save of one family
 * (iptables-* or ip6tables-*) and backend (nft or legacy), run through a
 * CommandRunner (which may run it inside a network namespace).
 *
 * Restore input goes on stdin with `-w 5 -W 100000` (wait for the xtables
 * lock, as upstream kube-proxy does) and --noflush / --counters as asked. A
 * failure becomes a RestoreError carrying the failing input line, parsed
 * from what iptables 1.8 prints on stderr (both backends, both families):
 *   parse errors   "Error occurred at line: 4"
 *   commit errors  "iptables-nft-restore: line 4 failed: No chain/target/match by that name."
 *                  "iptables-restore: line 4 failed" (legacy)
 *   truncated input "iptables-restore: COMMIT expected at line 4"
 * (iptables-nft names the COMMIT line for a jump to a missing chain; see
 * refineErrorLine.)
 */
import { describeFailure, type CommandRunner } from '../proxier/exec.ts';
import type { IPFamily } from '../proxier/types.ts';
import { extractLines, RestoreError, type Iptables, type IptablesBackend } from './iptables.ts';

export interface CreateIptablesOptions {
  readonly family: IPFamily;
  readonly backend: IptablesBackend;
  readonly runner: CommandRunner;
  /** Pass `-w 5 -W 100000` to iptables-restore (default true). */
  readonly waitFlags?: boolean;
  /** Bound on each command (default 60 s). */
  readonly timeoutMs?: number;
}

const LINE_PATTERNS = [/Error occurred at line: (\d+)/, /line (\d+) failed/, /COMMIT expected at line (\d+)/, /\bline:? (\d+)/];

/** The 1-based input line an iptables-restore failure names on stderr, or null. */
export function parseRestoreErrorLine(stderr: string): number | null {
  for (const re of LINE_PATTERNS) {
    const m = re.exec(stderr);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

/**
 * iptables-nft checks jump targets only at COMMIT, so for a jump to a chain
 * that does not exist it names the COMMIT line ("Chain 'X' does not exist",
 * "Error occurred at line: <COMMIT>"); legacy names the rule. This moves the
 * line back to the first rule of that table that jumps (-j/-g) to X.
 */
export function refineErrorLine(input: string, stderr: string, line: number | null): number | null {
  const chain = /Chain '([^']+)' does not exist/.exec(stderr)?.[1];
  const lines = input.split('\n');
  if (line === null || chain === undefined || lines[line - 1]?.trim() !== 'COMMIT') return line;
  const escaped = chain.replace(/[.*+?^$()|[\]{}\\]/g, '\\$&');
  const jump = new RegExp(`\\s-[jg]\\s+${escaped}(\\s|$)`);
  let start = line - 2;
  while (start > 0 && !lines[start]!.startsWith('*')) start--;
  for (let i = start; i < line - 1; i++) {
    if (jump.test(lines[i]!)) return i + 1;
  }
  return line;
}

/** The binary for a tool ("restore" / "save") of a family and backend, e.g. ip6tables-legacy-restore. */
export function iptablesBinary(family: IPFamily, backend: IptablesBackend, tool: 'restore' | 'save'): string {
  return `${family === 'IPv6' ? 'ip6tables' : 'iptables'}-${backend}-${tool}`;
}

/** stderr without the noise legacy iptables prints for -W ("Ignoring deprecated --wait-interval option."). */
function meaningful(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/Ignoring deprecated --wait-interval/.test(l) && !/^Try `/.test(l))
    .join('; ');
}

export function createIptables(opts: CreateIptablesOptions): Iptables {
  const restoreBin = iptablesBinary(opts.family, opts.backend, 'restore');
  const saveBin = iptablesBinary(opts.family, opts.backend, 'save');
  const runOpts = { timeoutMs: opts.timeoutMs ?? 60_000 };
  const netns = opts.runner.netns;
  const where = netns === undefined ? '' : ` (netns ${netns})`;

  return {
    family: opts.family,
    async restore(text, restoreOpts) {
      const args = [
        ...(opts.waitFlags === false ? [] : ['-w', '5', '-W', '100000']),
        ...(restoreOpts.noflush ? ['--noflush'] : []),
        ...(restoreOpts.counters ? ['--counters'] : []),
      ];
      const r = await opts.runner.run(restoreBin, args, { ...runOpts, input: text });
      if (r.code === 0) return;
      const line = refineErrorLine(text, r.stderr, parseRestoreErrorLine(r.stderr));
      const context = line === null ? '' : extractLines(text, line);
      const detail = meaningful(r.stderr) || '(no output)';
      throw new RestoreError({
        message: `${restoreBin}${where} failed with exit code ${r.code}${line === null ? '' : ` at input line ${line}`}: ${detail}`,
        exitCode: r.code,
        stderr: r.stderr,
        line,
        context,
      });
    },
    async save(tables, saveOpts) {
      const c = saveOpts?.counters ? ['-c'] : [];
      const runs = tables === undefined ? [c] : tables.map((t) => [...c, '-t', t]);
      const out: string[] = [];
      for (const args of runs) {
        const r = await opts.runner.run(saveBin, args, runOpts);
        if (r.code !== 0) throw new Error(describeFailure(saveBin, args, r, netns));
        out.push(r.stdout);
      }
      return out.join('');
    },
  };
}

export interface IptablesVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** "nft" for "(nf_tables)", "legacy" for "(legacy)", null when not printed (before 1.8). */
  readonly backend: IptablesBackend | null;
  readonly text: string;
}

/** Parses `iptables --version` output, e.g. "iptables v1.8.9 (nf_tables)". */
export function parseIptablesVersion(output: string): IptablesVersion {
  const m = /v(\d+)\.(\d+)(?:\.(\d+))?(?:\s+\((nf_tables|legacy)\))?/.exec(output);
  if (m === null) throw new Error(`cannot parse iptables version from ${JSON.stringify(output.trim())}`);
  const backend = m[4] === 'nf_tables' ? 'nft' : m[4] === 'legacy' ? 'legacy' : null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), backend, text: `${m[1]}.${m[2]}.${m[3] ?? 0}` };
}

/** Runs `iptables --version` (or another binary, e.g. ip6tables-legacy). */
export async function iptablesVersion(runner: CommandRunner, opts: { binary?: string } = {}): Promise<IptablesVersion> {
  const binary = opts.binary ?? 'iptables';
  const r = await runner.run(binary, ['--version'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(describeFailure(binary, ['--version'], r, runner.netns));
  return parseIptablesVersion(r.stdout + r.stderr);
}

/** MASQUERADE --random-fully exists from iptables 1.6.2 on. Accepts a parsed version or "1.6.2"-style text. */
export function supportsRandomFully(version: IptablesVersion | string): boolean {
  const v = typeof version === 'string' ? parseIptablesVersion(`v${version.replace(/^v/, '')}`) : version;
  const have = [v.major, v.minor, v.patch];
  const need = [1, 6, 2];
  for (let i = 0; i < 3; i++) if (have[i]! !== need[i]!) return have[i]! > need[i]!;
  return true;
}
