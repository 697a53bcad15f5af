import { describe, expect, it } from 'vitest';
import { commentMatch, kernelComment, MAX_COMMENT_BYTES } from './comment.ts';
import { tokenizeRule } from './rule-words.ts';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('kernelComment (what the kernel keeps: xt_comment 256-byte buffer)', () => {
  it('keeps short text as it is', () => {
    expect(kernelComment('ns1/svc1:p80 cluster IP')).toBe('ns1/svc1:p80 cluster IP');
    const exactly = 'x'.repeat(MAX_COMMENT_BYTES);
    expect(kernelComment(exactly)).toBe(exactly);
  });

  it('cuts long text to 255 bytes', () => {
    expect(kernelComment('x'.repeat(300))).toBe('x'.repeat(255));
  });

  it('never splits a multi-byte character: cuts before it', () => {
    const text = `ns1/${'日本'.repeat(60)} cluster IP`; // "ns1/" is 4 bytes, then 3-byte characters: byte 255 falls inside one
    const kept = kernelComment(text);
    expect(bytes(kept)).toBe(253);
    expect(text.startsWith(kept)).toBe(true);
    const emoji = `${'x'.repeat(253)}\u{1F600}tail`; // a 4-byte character (a UTF-16 surrogate pair) across the limit
    expect(kernelComment(emoji)).toBe('x'.repeat(253));
  });

  it('writes a lone UTF-16 surrogate as U+FFFD, as the UTF-8 encoder does anyway', () => {
    expect(kernelComment('a\ud800b')).toBe('a\ufffdb');
  });

  it('is idempotent', () => {
    for (const t of ['x'.repeat(300), `ns1/${'日本'.repeat(60)}`, 'a\ud800b'.repeat(100)])
      expect(kernelComment(kernelComment(t))).toBe(kernelComment(t));
  });
});

describe('commentMatch (quoted and escaped as iptables-save prints it)', () => {
  it('writes valid names exactly as upstream does: unquoted when one word, quoted otherwise', () => {
    expect(commentMatch('ns1/svc1:p80')).toBe('-m comment --comment ns1/svc1:p80');
    expect(commentMatch('ns1/svc1:p80 cluster IP')).toBe('-m comment --comment "ns1/svc1:p80 cluster IP"');
  });

  it('escapes quotes and backslashes inside the quotes', () => {
    expect(commentMatch('ns1/quote"d cluster IP')).toBe('-m comment --comment "ns1/quote\\"d cluster IP"');
    expect(commentMatch('ns1/a\\b c')).toBe('-m comment --comment "ns1/a\\\\b c"');
  });

  it.each([
    'ns1/quote"d cluster IP',
    'ns1/with space',
    'ns1/with\ttab:p80',
    "ns1/back\\slash'n",
    'team a/svc:p "80',
    '-ns/dash',
    'ns1/pi|pe has no endpoints',
    `ns1/${'x'.repeat(300)}`,
    `ns1/${'日本'.repeat(60)}`,
    'ns1/emoji\u{1F600}lone\ud800',
    '"',
    '\\',
    '',
  ])('reads back (iptables-restore tokenizer) as the text the kernel keeps: %j', (text) => {
    const words = tokenizeRule(`${commentMatch(text)} -j RETURN`);
    expect(words).toEqual(['-m', 'comment', '--comment', kernelComment(text), '-j', 'RETURN']);
  });
});
