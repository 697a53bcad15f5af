import { describe, expect, it } from 'vitest';
import { restoreText, restoreTextLength, writeRestoreText, type TableSection } from './restore-text.ts';

const chain = (name: string, n: number) => ({
  name,
  policy: null,
  rules: Array.from({ length: n }, (_, i) => `-m comment --comment "rule ${i}" -j ACCEPT`),
});

describe('restore text', () => {
  it('counts the length of the text without building it (plan.ts makes each batch only when it is written)', () => {
    const inputs: TableSection[][] = [
      [],
      [{ table: 'filter' }],
      [{ table: 'nat', chains: [chain('KUBE-A', 1)], emptied: ['KUBE-OLD'], edits: ['-I PREROUTING 1 -j KUBE-A'], deleted: ['KUBE-OLD'] }],
      [
        { table: 'filter', chains: [chain('KUBE-FORWARD', 3), chain('KUBE-EMPTY', 0)], edits: ['-D INPUT -j KUBE-X'] },
        { table: 'nat', chains: [chain('KUBE-SVC-ABCDEFGHIJKLMNOP', 40)], deleted: ['KUBE-SEP-1', 'KUBE-SEP-22'] },
        { table: 'nat', emptied: ['KUBE-SEP-1'] },
      ],
    ];
    for (const sections of inputs) expect(restoreTextLength(sections)).toBe(restoreText(sections).length);
    expect(restoreTextLength([{ table: 'filter' }])).toBe(0);
  });

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
