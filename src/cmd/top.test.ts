import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../proxier/log.ts';
import { redraw, topCommand } from './top.ts';

const io = () => {
  const err: string[] = [];
  return { err, io: { stdout: () => undefined, stderr: (t: string) => void err.push(t), makeLogger: () => silentLogger() } };
};

describe('kube-proxy-ts top: arguments', () => {
  it.each([
    [['--interval', '10ms'], /--interval must be at least 100ms/],
    [['--iterations', '-1'], /--iterations: must be greater than or equal to 0/],
    [['--ip-family', 'IPv5'], /--ip-family/],
    [['--bogus'], /unknown flag: --bogus/],
  ])('refuses %j with exit 2 before reading anything', async (argv, message) => {
    const t = io();
    expect(await topCommand(argv, t.io)).toBe(2);
    expect(t.err.join('')).toMatch(message);
  });

  it('--mode nftables: reads the named counters with nft, naming each from its chain; says when the table is missing', async () => {
    const calls: string[] = [];
    let packets = 3;
    const listing = () =>
      `{"nftables": [{"metainfo": {"json_schema_version": 1}}, {"counter": {"family": "ip", "name": "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", "table": "kube-proxy", "handle": 3, "packets": ${(packets += 5)}, "bytes": ${packets * 60}}}]}\n`;
    const out: string[] = [];
    const t = io();
    const runner = {
      run: async (cmd: string, args: readonly string[]) => {
        calls.push([cmd, ...args].join(' '));
        return { code: 0, stdout: listing(), stderr: '' };
      },
    };
    const code = await topCommand(['--mode', 'nftables', '--interval', '100ms', '--iterations', '1'], {
      ...t.io,
      stdout: (x: string) => void out.push(x),
      runner,
    });
    expect(code).toBe(0);
    expect(calls).toEqual(['nft -j list counters table ip kube-proxy', 'nft -j list counters table ip kube-proxy']);
    expect(out.join('')).toContain("as the endpoint chains' named counters count them");
    expect(out.join('')).toMatch(/^ns1\/svc1:p80 +\d/m);
    expect(out.join('')).toMatch(/^ {2}10\.180\.0\.1:80 +\d+\.\d +\S+ +100% +13 /m);

    const missing = io();
    const none = { run: async () => ({ code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist counters table ip kube-proxy\n' }) };
    expect(await topCommand(['--mode', 'nftables', '--iterations', '1'], { ...missing.io, runner: none })).toBe(1);
    expect(missing.err.join('')).toMatch(/no table ip kube-proxy on this node/);
  });

  it('redraws from the top left, clearing each line and the rest of the screen', () => {
    expect(redraw(['a', 'bb'])).toBe('\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J');
  });
});
