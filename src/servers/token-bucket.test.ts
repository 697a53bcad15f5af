import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.ts';

describe('TokenBucket', () => {
  it('allows a burst, then one request per refill, and says when the next token comes', () => {
    const b = new TokenBucket({ burst: 3, perSecond: 0.5 });
    expect([b.take(0), b.take(0), b.take(0)].every((t) => t.ok)).toBe(true);
    expect(b.take(0)).toEqual({ ok: false, retryAfterSeconds: 2 });
    expect(b.take(1000)).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(b.take(2000)).toEqual({ ok: true });
    expect(b.take(2000).ok).toBe(false);
    // A long pause refills to the burst, not beyond.
    for (let i = 0; i < 3; i++) expect(b.take(60_000).ok).toBe(true);
    expect(b.take(60_000).ok).toBe(false);
  });

  it('does not refill when the clock goes backwards', () => {
    const b = new TokenBucket({ burst: 1, perSecond: 1 });
    expect(b.take(5000).ok).toBe(true);
    expect(b.take(1000).ok).toBe(false);
    expect(b.take(5500).ok).toBe(false);
    expect(b.take(6000).ok).toBe(true);
  });

  it('refuses a bucket that can never answer', () => {
    expect(() => new TokenBucket({ burst: 0, perSecond: 1 })).toThrow(/burst/);
  });
});
