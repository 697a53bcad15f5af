import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.ts';
import { silentLogger, type Logger } from './log.ts';
import type { OutsideChange } from './mode.ts';
import { OUTSIDE_CHANGE_QUIET_MS, outsideChangeReporter } from './outside-changes.ts';

function capture() {
  const lines: { level: 'warn' | 'info'; fields: Record<string, unknown>; msg: string }[] = [];
  const logger: Logger = {
    ...silentLogger(),
    warn: ((fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', fields, msg })) as Logger['warn'],
    info: ((fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'info', fields, msg })) as Logger['info'],
  };
  return { lines, logger };
}

const firewall: OutsideChange = {
  family: 'IPv4',
  kind: 'rules',
  message: 'iptables rules were changed outside kube-proxy-ts (filter KUBE-FIREWALL: 2 rules, 1 written): rewriting all of them',
  fields: { drift: ['filter KUBE-FIREWALL: 2 rules, 1 written'] },
};

describe('outside changes (kube-proxy-ts: upstream logs only a flush, at V(2))', () => {
  it('a fight with another writer every sync period is one warning per quiet period, the rest info lines, each one counted', () => {
    const clock = new ManualClock(0);
    const { lines, logger } = capture();
    const counted: OutsideChange[] = [];
    const report = outsideChangeReporter({ clock, logger, count: (c) => counted.push(c) });
    // An old kubelet re-adds its rule every 30 s, for 25 minutes: 50 repairs.
    for (let i = 0; i < 50; i++) {
      report(firewall);
      clock.advance(30_000);
    }
    expect(counted).toHaveLength(50);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.map((l) => l.msg)).toEqual([
      firewall.message,
      `${firewall.message} (and 19 more times in the 10 minutes before)`,
      `${firewall.message} (and 19 more times in the 10 minutes before)`,
    ]);
    expect(lines.filter((l) => l.level === 'info')).toHaveLength(47);
    expect(lines[1]!.msg).toBe(`${firewall.message} (again: 1 since the last warning)`);
    expect(lines[0]!.fields).toEqual({ ipFamily: 'IPv4', outsideChange: 'rules', drift: ['filter KUBE-FIREWALL: 2 rules, 1 written'] });
  });

  it('each family and kind has its own quiet period; a change after a quiet one is a plain warning again', () => {
    const clock = new ManualClock(0);
    const { lines, logger } = capture();
    const report = outsideChangeReporter({ clock, logger });
    report(firewall);
    report({ ...firewall, family: 'IPv6' });
    report({ family: 'IPv4', kind: 'flushed', message: 'flushed' });
    report(firewall);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'info']);
    clock.advance(OUTSIDE_CHANGE_QUIET_MS);
    report({ family: 'IPv4', kind: 'flushed', message: 'flushed' });
    expect(lines.at(-1)).toMatchObject({ level: 'warn', msg: 'flushed' });
  });
});
