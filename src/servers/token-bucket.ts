/**
 * A token bucket: `burst` requests at once, then one every `perSecond`-th of
 * a second. The /debug/* pages use one (a ruleset of 10,000 services is tens
 * of megabytes of text built per request, so a loop of curl must not turn
 * into a CPU loop of the agent). Pure: the caller passes the time.
 */
export interface TokenBucketOptions {
  /** Requests allowed at once (the bucket's size). */
  readonly burst: number;
  /** Tokens added per second. */
  readonly perSecond: number;
}

export type Take = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

export class TokenBucket {
  private readonly o: TokenBucketOptions;
  private tokens: number;
  private last: number | null = null;

  constructor(options: TokenBucketOptions) {
    if (!(options.burst >= 1) || !(options.perSecond > 0)) throw new Error(`token bucket: burst must be >= 1 and perSecond > 0`);
    this.o = options;
    this.tokens = options.burst;
  }

  /** Takes a token at `nowMs`, or says how many whole seconds until one is there (HTTP Retry-After). */
  take(nowMs: number): Take {
    if (this.last !== null && nowMs > this.last) {
      this.tokens = Math.min(this.o.burst, this.tokens + ((nowMs - this.last) / 1000) * this.o.perSecond);
    }
    this.last = this.last === null ? nowMs : Math.max(this.last, nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.tokens) / this.o.perSecond)) };
  }
}
