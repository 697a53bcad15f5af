/**
 * `diff`'s view of the node's nfacct counters: the agent's rules match them only where the kernel has the xt_nfacct
 * match (the agent's probe, kubernetes#142068), so diff renders without them there instead of reporting drift.
 */
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../proxier/exec.ts';
import { nodeNfacctCounters } from './diff.ts';

const NFACCT_LIST =
  `{ pkts = 00000000000000000003, bytes = 00000000000000000180 } = ct_state_invalid_dropped_pkts;\n` +
  `{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = localhost_nps_accepted_pkts;\n`;

/** A node: its /proc/net/ip_tables_matches (null: unreadable) and whether the nfacct tool is installed. */
function node(matches: string | null, tool = true): CommandRunner {
  return {
    async run(cmd, args) {
      if (cmd === 'cat' && args[0] === '/proc/net/ip_tables_matches')
        return matches === null
          ? { code: 1, stdout: '', stderr: 'cat: /proc/net/ip_tables_matches: No such file or directory\n' }
          : { code: 0, stdout: matches, stderr: '' };
      if (cmd === 'nfacct' && args[0] === 'list') {
        if (!tool) throw Object.assign(new Error('spawn nfacct ENOENT'), { code: 'ENOENT' });
        return { code: 0, stdout: NFACCT_LIST, stderr: '' };
      }
      throw new Error(`unexpected command ${cmd} ${args.join(' ')}`);
    },
  };
}

describe('diff: the nfacct counters the agent matches (probeNfacctMatch, kubernetes#142068)', () => {
  it("renders with the node's counters when the kernel has the nfacct match", async () => {
    const counters = await nodeNfacctCounters(node('u32\nnfacct\nnfacct\nmark\n'));
    expect([...counters].sort()).toEqual(['ct_state_invalid_dropped_pkts', 'localhost_nps_accepted_pkts']);
  });

  it('renders without counters when the kernel has no nfacct match, as the agent then writes its rules', async () => {
    expect([...(await nodeNfacctCounters(node('u32\nnfacctx\nmark\nconntrack\n')))]).toEqual([]);
  });

  it('keeps the counters when the list of matches cannot be read, and has none without the tool', async () => {
    expect((await nodeNfacctCounters(node(null))).size).toBe(2);
    expect((await nodeNfacctCounters(node('nfacct\n', false))).size).toBe(0);
  });
});
