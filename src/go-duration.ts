/**
 * Go's time.Duration text form, as kube-proxy's flags (pflag DurationVar) and
 * its config file (metav1.Duration) read and write it. A duration is a whole
 * number of nanoseconds: "0.5ns" is 0, "1.5us" is 1500ns. kube-proxy-ts keeps
 * durations as milliseconds (a number), derived from the nanoseconds, so the
 * text written back (formatGoDuration) is the one Go would write.
 */

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const TWO63 = 1n << 63n;

/**
 * Go's time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or "0".
 * Returns nanoseconds, or null when Go would refuse the text (no unit, an
 * unknown unit, no digits, overflow). The fraction is taken as Go takes it
 * (leadingFraction, then float64 arithmetic truncated to whole nanoseconds).
 */
export function parseGoDurationNs(text: string): bigint | null {
  let s = text;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return null;
  let d = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?([^\d.]*)/.exec(s)!;
    const [whole, intText = '', fracText, unitText = ''] = m;
    if (intText === '' && !fracText) return null; // no digits, e.g. ".s"
    if (unitText === '') return null; // missing unit
    const unit = UNIT_NS[unitText];
    if (unit === undefined) return null;
    let v = 0n;
    for (const c of intText) {
      v = v * 10n + BigInt(c);
      if (v > TWO63) return null;
    }
    if (v > TWO63 / unit) return null;
    v *= unit;
    if (fracText) {
      const { f, scale } = leadingFraction(fracText);
      if (f > 0n) v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > TWO63) return null;
    }
    d += v;
    if (d > TWO63) return null;
    s = s.slice(whole.length);
  }
  if (neg) return -d;
  return d > TWO63 - 1n ? null : d;
}

/** Go's leadingFraction: digits until the value would overflow int64, and 10^(digits taken). */
function leadingFraction(digits: string): { f: bigint; scale: number } {
  let f = 0n;
  let scale = 1;
  for (const c of digits) {
    if (f > (TWO63 - 1n) / 10n) break;
    const y = f * 10n + BigInt(c);
    if (y > TWO63) break;
    f = y;
    scale *= 10;
  }
  return { f, scale };
}

/** parseGoDurationNs in milliseconds (fractional below 1 ms), or null. */
export function parseGoDuration(text: string): number | null {
  const ns = parseGoDurationNs(text);
  return ns === null ? null : nsToMs(ns);
}

export const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
export const msToNs = (ms: number): bigint => BigInt(Math.round(ms * 1e6));

/** Go's Duration.String(): "0s", "500ns", "1.5µs", "250ms", "1.5s", "1m0s", "24h0m0s". */
export function formatGoDurationNs(ns: bigint): string {
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u === 0n) return '0s';
  if (u < 1_000_000_000n) {
    const [unit, prec] = u < 1_000n ? ['ns', 0] : u < 1_000_000n ? ['µs', 3] : ['ms', 6];
    out = `${fraction(u, prec)}${unit}`;
  } else {
    const secs = fraction(u % 60_000_000_000n, 9);
    u /= 60_000_000_000n;
    out = `${secs}s`;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/** v / 10^prec with the fraction's trailing zeros (and a bare point) dropped, as Go's fmtFrac + fmtInt. */
function fraction(v: bigint, prec: number): string {
  const scale = 10n ** BigInt(prec);
  const frac = prec === 0 ? '' : (v % scale).toString().padStart(prec, '0').replace(/0+$/, '');
  return `${v / scale}${frac ? `.${frac}` : ''}`;
}

export const formatGoDuration = (ms: number): string => formatGoDurationNs(msToNs(ms));
