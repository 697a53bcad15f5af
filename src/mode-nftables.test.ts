/**
 * The agent's nft channels when a transaction cannot be staged for the `nft -i` session (/tmp full, its directory
 * gone where no other can be made): the transaction runs as `nft -f -`, one warning says why, and one line says when
 * the session takes transactions again. The real session and nft under the same faults: nftables/nft-session.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { NftChildEvents, NftLauncher } from '../nftables/nft-session.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import { nftChannels } from './mode-nftables.ts';

/** nft -i as the session sees it: every include succeeds (its marker's syntax error block, nothing before). */
function launcher(state: { full: boolean }, included: string[]): NftLauncher {
  let staged = '';
  return {
    start: (_cmd, _args, _env, events: NftChildEvents) => ({
      send: (line) => {
        const [, marker] = line.trim().split('\n');
        included.push(staged);
        setImmediate(() => events.stderr(`Error: syntax error, unexpected junk\n${marker}\n^\n`));
      },
      close: () => undefined,
    }),
    stage: async (text) => {
      if (state.full) throw new Error('cannot stage a transaction (20 bytes): ENOSPC; in a new directory: ENOSPC');
      staged = text;
      return '/run/kpt-test/transaction.nft';
    },
    dispose: async () => undefined,
  };
}

describe('nftChannels (the agent)', () => {
  it('applies a transaction that cannot be staged as nft -f -, warns once, and says when the session takes them again', async () => {
    const state = { full: false };
    const included: string[] = [];
    const piped: string[] = [];
    const runner: CommandRunner = {
      run: async (cmd, args, opts) => {
        piped.push(`${cmd} ${args.join(' ')}: ${opts?.input ?? ''}`);
        return { code: 0, stdout: '', stderr: '' };
      },
    };
    const lines: string[] = [];
    const log = {
      warn: (m: string) => lines.push(`warn ${m}`),
      info: (m: string) => lines.push(`info ${m}`),
    } as unknown as Logger;
    const channels = nftChannels(runner, { launchers: { sessions: launcher(state, included), deletions: launcher(state, []) }, log });

    await channels.nft.run('add table ip a\n');
    state.full = true;
    await channels.nft.run('add table ip b\n');
    await channels.nft.run('add table ip c\n');
    state.full = false;
    await channels.nft.run('add table ip d\n');
    await channels.close();

    expect(included).toEqual(['add table ip a\n', 'add table ip d\n']);
    expect(piped).toEqual(['nft -f -: add table ip b\n', 'nft -f -: add table ip c\n']);
    expect(lines).toEqual([
      'warn cannot stage a transaction (20 bytes): ENOSPC; in a new directory: ENOSPC: this nftables transaction, and each one until staging works again, runs as its own `nft -f -`',
      'info nftables transactions are staged again: back to the `nft -i` session',
    ]);
  });
});
