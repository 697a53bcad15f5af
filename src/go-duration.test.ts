import { describe, expect, it } from 'vitest';
import { formatGoDurationNs, parseGoDuration, parseGoDurationNs } from './go-duration.ts';

const S = 1_000_000_000n;
const MIN = 60n * S;
const H = 60n * MIN;

describe('Go durations', () => {
  // Cases from Go's own table (src/time/time_test.go, parseDurationTests).
  it.each([
    ['0', 0n],
    ['5s', 5n * S],
    ['1478s', 1478n * S],
    ['-5s', -5n * S],
    ['+5s', 5n * S],
    ['-0', 0n],
    ['+0', 0n],
    ['5.0s', 5n * S],
    ['5.6s', 5n * S + 600_000_000n],
    ['5.s', 5n * S],
    ['.5s', 500_000_000n],
    ['1.004s', S + 4_000_000n],
    ['100.00100s', 100n * S + 1_000_000n],
    ['10ns', 10n],
    ['11us', 11_000n],
    ['12µs', 12_000n],
    ['12μs', 12_000n],
    ['13ms', 13_000_000n],
    ['15m', 15n * MIN],
    ['16h', 16n * H],
    ['3h30m', 3n * H + 30n * MIN],
    ['10.5s4m', 4n * MIN + 10n * S + 500_000_000n],
    ['-2m3.4s', -(2n * MIN + 3n * S + 400_000_000n)],
    ['1h2m3s4ms5us6ns', H + 2n * MIN + 3n * S + 4_000_000n + 5_000n + 6n],
    ['52763797000ns', 52763797000n],
    ['0.3333333333333333333h', 20n * MIN],
    ['9007199254740993ns', 9007199254740993n],
    ['9223372036854775807ns', (1n << 63n) - 1n],
    ['9223372036.854775807s', (1n << 63n) - 1n],
    ['-9223372036854775808ns', -(1n << 63n)],
    ['0.100000000000000000000h', 6n * MIN],
    ['0.830103483285477580700h', 49n * MIN + 48n * S + 372539827n],
    // Fractions of a nanosecond are truncated: --iptables-min-sync-period=0.5ns is 0.
    ['0.5ns', 0n],
    ['1.5ns', 1n],
    ['1.5us', 1500n],
  ])('parses %s (Go time.ParseDuration)', (text, ns) => {
    expect(parseGoDurationNs(text)).toBe(ns);
  });

  it.each([
    '',
    '3',
    '-',
    's',
    '.',
    '-.',
    '.s',
    '+.s',
    '1d',
    '1.5.3s',
    '30 s',
    '9223372036854775808ns',
    '9223372036854ms775us808ns',
    '-9223372036854775809ns',
  ])('refuses %j as Go does', (text) => {
    expect(parseGoDurationNs(text)).toBeNull();
  });

  // Cases from Go's durationTests (Duration.String).
  it.each([
    [0n, '0s'],
    [1n, '1ns'],
    [1100n, '1.1µs'],
    [2_200_000n, '2.2ms'],
    [3_300_000_000n, '3.3s'],
    [4n * MIN + 5n * S, '4m5s'],
    [4n * MIN + 5_001_000_000n, '4m5.001s'],
    [5n * H + 6n * MIN + 7_001_000_000n, '5h6m7.001s'],
    [8n * MIN + 1n, '8m0.000000001s'],
    [(1n << 63n) - 1n, '2562047h47m16.854775807s'],
    [-(1n << 63n), '-2562047h47m16.854775808s'],
    [15n * MIN, '15m0s'],
    [24n * H, '24h0m0s'],
  ])('prints %s ns as %s (Go Duration.String)', (ns, text) => {
    expect(formatGoDurationNs(ns)).toBe(text);
  });

  it('gives milliseconds from whole nanoseconds', () => {
    expect(parseGoDuration('1.5us')).toBe(0.0015);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('0.5ns')).toBe(0);
  });
});
