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

  it('redraws from the top left, clearing each line and the rest of the screen', () => {
    expect(redraw(['a', 'bb'])).toBe('\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J');
  });
});
