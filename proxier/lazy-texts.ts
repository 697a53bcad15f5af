/**
 * Texts made one at a time as they are iterated: the iptables mode's restore
 * batches and the nftables mode's cold-start transactions. Each is made when
 * the writer reaches it and is garbage once written, so a 10,000-service
 * full sync (~17-20 MB of text) never holds all of it at once.
 */

/** Texts in order, made as the iteration reaches each; `length` is their number. */
export interface LazyTexts extends Iterable<string> {
  readonly length: number;
}

/** `count` texts, the i-th made by `make(i)` each time an iteration reaches it. */
export function lazyTexts(count: number, make: (i: number) => string): LazyTexts {
  return {
    length: count,
    *[Symbol.iterator]() {
      for (let i = 0; i < count; i++) yield make(i);
    },
  };
}
