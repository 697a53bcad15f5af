import { describe, expect, it } from 'vitest';
import type { CommandRunner, RunOptions, RunResult } from '../proxier/exec.ts';
import { RestoreError } from './iptables.ts';
import { createIptables, iptablesBinary, parseIptablesVersion, parseRestoreErrorLine, refineErrorLine, supportsRandomFully } from './restore.ts';

/** Records calls and answers each with the next canned result. */
function fakeRunner(
  results: RunResult[],
  netns?: string,
): CommandRunner & { calls: { cmd: string; args: readonly string[]; opts: RunOptions | undefined }[] } {
  const calls: { cmd: string; args: readonly string[]; opts: RunOptions | undefined }[] = [];
  return {
    calls,
    ...(netns !== undefined ? { netns } : {}),
    async run(cmd, args, opts) {
      calls.push({ cmd, args, opts });
      return results.shift() ?? { code: 0, stdout: '', stderr: '' };
    },
  };
}

// stderr as iptables 1.8.9 prints it (captured from both backends).
const NFT_PARSE =
  "iptables-nft-restore v1.8.9 (nf_tables): Couldn't load match `nosuch':No such file or directory\n\nError occurred at line: 4\nTry `iptables-nft-restore -h' or 'iptables-nft-restore --help' for more information.\n";
const NFT_COMMIT = 'iptables-nft-restore: line 4 failed: No chain/target/match by that name.\n';
const LEGACY_COMMIT = 'Ignoring deprecated --wait-interval option.\nip6tables-restore: line 2 failed\n';
const NO_COMMIT = 'iptables-restore: COMMIT expected at line 4\n';
const NFT_MISSING_CHAIN = "iptables-nft-restore v1.8.9 (nf_tables): Chain 'KUBE-SVC-X' does not exist\nError occurred at line: 5\n";

describe('parseRestoreErrorLine', () => {
  it.each([
    [NFT_PARSE, 4],
    [NFT_COMMIT, 4],
    [LEGACY_COMMIT, 2],
    [NO_COMMIT, 4],
    ["iptables-restore: unable to initialize table 'nat'\n\nError occurred at line: 1\n", 1],
    ['iptables-restore: something else entirely\n', null],
  ])('%j -> %s', (stderr, line) => {
    expect(parseRestoreErrorLine(stderr)).toBe(line);
  });
});

describe('refineErrorLine', () => {
  const input =
    '*filter\n:A - [0:0]\nCOMMIT\n*nat\n:B - [0:0]\n-A B -j RETURN\n-A B -m comment --comment x -j KUBE-SVC-X\n-A B -g KUBE-SVC-X\nCOMMIT\n';
  it('moves an nft COMMIT-line failure to the first rule jumping to the missing chain', () => {
    expect(refineErrorLine(input, NFT_MISSING_CHAIN, 9)).toBe(7);
  });
  it('leaves other failures alone', () => {
    expect(refineErrorLine(input, NFT_COMMIT, 6)).toBe(6);
    expect(refineErrorLine(input, NFT_MISSING_CHAIN, 6)).toBe(6);
    expect(refineErrorLine(input, NFT_MISSING_CHAIN, null)).toBe(null);
  });
  it('does not look into an earlier table or match a longer chain name', () => {
    const other = '*nat\n-A B -j KUBE-SVC-X\nCOMMIT\n*filter\n-A C -j KUBE-SVC-XY\nCOMMIT\n';
    expect(refineErrorLine(other, NFT_MISSING_CHAIN, 6)).toBe(6);
  });
});

describe('createIptables', () => {
  it('runs the family and backend binary with the wait flags and options, input on stdin', async () => {
    const runner = fakeRunner([]);
    const ipt = createIptables({ family: 'IPv6', backend: 'legacy', runner });
    await ipt.restore('*nat\nCOMMIT\n', { noflush: true, counters: true });
    expect(runner.calls[0]).toEqual({
      cmd: 'ip6tables-legacy-restore',
      args: ['-w', '5', '-W', '100000', '--noflush', '--counters'],
      opts: { timeoutMs: 60_000, input: '*nat\nCOMMIT\n' },
    });
    const noWait = createIptables({ family: 'IPv4', backend: 'nft', runner, waitFlags: false });
    await noWait.restore('', { noflush: false, counters: false });
    expect(runner.calls[1]?.cmd).toBe('iptables-nft-restore');
    expect(runner.calls[1]?.args).toEqual([]);
  });

  it('rejects with a RestoreError naming the line and showing its context', async () => {
    const input = '*filter\n:KUBE-X - [0:0]\n-A KUBE-X -j ACCEPT\n-A KUBE-X -m nosuch -j ACCEPT\nCOMMIT\n';
    const ipt = createIptables({ family: 'IPv4', backend: 'nft', runner: fakeRunner([{ code: 2, stdout: '', stderr: NFT_PARSE }]) });
    const err = (await ipt.restore(input, { noflush: true, counters: false }).catch((e: unknown) => e)) as RestoreError;
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.line).toBe(4);
    expect(err.exitCode).toBe(2);
    expect(err.stderr).toBe(NFT_PARSE);
    expect(err.context).toContain('>     4: -A KUBE-X -m nosuch -j ACCEPT');
    expect(err.message).toBe(
      "iptables-nft-restore failed with exit code 2 at input line 4: iptables-nft-restore v1.8.9 (nf_tables): Couldn't load match `nosuch':No such file or directory; Error occurred at line: 4",
    );
  });

  it('save runs one -t per table and concatenates, or saves everything', async () => {
    const runner = fakeRunner([
      { code: 0, stdout: '*nat\nCOMMIT\n', stderr: '' },
      { code: 0, stdout: '*filter\nCOMMIT\n', stderr: '' },
      { code: 0, stdout: 'all\n', stderr: '' },
    ]);
    const ipt = createIptables({ family: 'IPv4', backend: 'legacy', runner });
    expect(await ipt.save(['nat', 'filter'])).toBe('*nat\nCOMMIT\n*filter\nCOMMIT\n');
    expect(await ipt.save()).toBe('all\n');
    expect(runner.calls.map((c) => [c.cmd, ...c.args])).toEqual([
      ['iptables-legacy-save', '-t', 'nat'],
      ['iptables-legacy-save', '-t', 'filter'],
      ['iptables-legacy-save'],
    ]);
  });

  it('save throws naming the command when it fails', async () => {
    const ipt = createIptables({
      family: 'IPv4',
      backend: 'nft',
      runner: fakeRunner([{ code: 1, stdout: '', stderr: "Table `bogus' does not exist\n" }]),
    });
    await expect(ipt.save(['bogus'])).rejects.toThrow("iptables-nft-save -t bogus exited with code 1: Table `bogus' does not exist");
  });

  it('names the network namespace its runner was made for in failures', async () => {
    const ipt = createIptables({
      family: 'IPv4',
      backend: 'nft',
      runner: fakeRunner(
        [
          { code: 1, stdout: '', stderr: 'x\n' },
          { code: 2, stdout: '', stderr: 'y\n' },
        ],
        'kpt-node-1',
      ),
    });
    await expect(ipt.save(['nat'])).rejects.toThrow('iptables-nft-save -t nat (netns kpt-node-1) exited with code 1: x');
    await expect(ipt.restore('*nat\nCOMMIT\n', { noflush: true, counters: false })).rejects.toThrow(
      'iptables-nft-restore (netns kpt-node-1) failed with exit code 2: y',
    );
  });

  it('names binaries per family and backend', () => {
    expect(iptablesBinary('IPv4', 'nft', 'restore')).toBe('iptables-nft-restore');
    expect(iptablesBinary('IPv6', 'legacy', 'save')).toBe('ip6tables-legacy-save');
  });
});

describe('versions', () => {
  it('parses iptables --version output', () => {
    expect(parseIptablesVersion('iptables v1.8.9 (nf_tables)\n')).toEqual({ major: 1, minor: 8, patch: 9, backend: 'nft', text: '1.8.9' });
    expect(parseIptablesVersion('iptables v1.8.7 (legacy)')).toMatchObject({ backend: 'legacy', text: '1.8.7' });
    expect(parseIptablesVersion('iptables v1.6.1')).toMatchObject({ major: 1, minor: 6, patch: 1, backend: null });
    expect(() => parseIptablesVersion('command not found')).toThrow(/cannot parse iptables version/);
  });

  it('random-fully needs 1.6.2 or newer', () => {
    expect(supportsRandomFully('1.6.1')).toBe(false);
    expect(supportsRandomFully('1.6.2')).toBe(true);
    expect(supportsRandomFully('v1.8.9')).toBe(true);
    expect(supportsRandomFully('1.4.21')).toBe(false);
    expect(supportsRandomFully(parseIptablesVersion('iptables v2.0.0 (nf_tables)'))).toBe(true);
  });
});
