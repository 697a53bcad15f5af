import { describe, expect, it } from 'vitest';
import { restoreText, writeRestoreText, type TableSection } from './restore-text.ts';

const chain = (name: string, n: number) => ({
  name,
  policy: null,
  rules: Array.from({ length: n }, (_, i) => `-m comment --comment "rule ${i}" -j ACCEPT`),
});

describe('restore text', () => {
  it("writes upstream's layout: header, declarations, edits, rules, deletions, COMMIT; nothing for an empty section", () => {
    const sections: TableSection[] = [
      { table: 'filter' },
      { table: 'nat', chains: [chain('KUBE-A', 1)], emptied: ['KUBE-OLD'], edits: ['-I PREROUTING 1 -j KUBE-A'], deleted: ['KUBE-OLD'] },
    ];
    expect(restoreText(sections)).toBe(
      [
        '*nat',
        ':KUBE-A - [0:0]',
        ':KUBE-OLD - [0:0]',
        '-I PREROUTING 1 -j KUBE-A',
        '-A KUBE-A -m comment --comment "rule 0" -j ACCEPT',
        '-X KUBE-OLD',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(restoreText([{ table: 'nat' }])).toBe('');
  });

  it('streams the same text in chunks of bounded size, each ending with a whole line', () => {
    const sections: TableSection[] = [
      { table: 'filter', chains: [chain('KUBE-F', 500)] },
      { table: 'nat', chains: [chain('KUBE-N', 2000), chain('KUBE-M', 3)] },
    ];
    const chunks: string[] = [];
    writeRestoreText(sections, (c) => chunks.push(c), 4096);
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.join('')).toBe(restoreText(sections));
    const longestLine = Math.max(
      ...restoreText(sections)
        .split('\n')
        .map((l) => l.length + 1),
    );
    for (const c of chunks) {
      expect(c.endsWith('\n')).toBe(true);
      expect(c.length).toBeLessThan(4096 + longestLine);
    }
    const none: string[] = [];
    writeRestoreText([{ table: 'nat' }], (c) => none.push(c));
    expect(none).toEqual([]);
  });
});
