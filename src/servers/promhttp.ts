/**
 * How upstream's metrics endpoints write a registry (prometheus/client_golang promhttp.HandlerFor, which
 * component-base's legacyregistry.Handler and metrics.HandlerWithReset wrap): the Prometheus text format 0.0.4
 * (component-base does not turn OpenMetrics on), gzip-compressed when the request's Accept-Encoding ranks gzip
 * above identity (promhttp offers identity, then gzip), and, for /metrics, the process's start in a
 * Process-Start-Time-Unix header (legacyregistry passes HandlerOpts.ProcessStartTime).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Registry } from 'prom-client';

const gzipAsync = promisify(gzip);

/** promhttp's offers, in its order (defaultCompressionFormats without the zstd package linked in). */
const OFFERS = ['identity', 'gzip'] as const;
export type ContentEncoding = (typeof OFFERS)[number];

/** RFC 2616 token characters, as gddo's header package classifies octets. */
const isToken = (c: number): boolean => c > 31 && c < 127 && !' \t"(),/:;<=>?@[]\\{}'.includes(String.fromCharCode(c));
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10;

/** gddo header.ParseAccept over each header line: a value, an optional `;q=`; a line with anything else ends there. */
function parseAccept(lines: readonly string[]): { value: string; q: number }[] {
  const specs: { value: string; q: number }[] = [];
  for (let s of lines) {
    for (;;) {
      let i = 0;
      while (i < s.length && (isToken(s.charCodeAt(i)) || s[i] === '/')) i++;
      const value = s.slice(0, i);
      if (value === '') break;
      s = skipSpace(s.slice(i));
      let q = 1;
      if (s.startsWith(';')) {
        s = skipSpace(s.slice(1));
        if (!s.startsWith('q=')) break;
        [q, s] = expectQuality(s.slice(2));
        if (q < 0) break;
      }
      specs.push({ value, q });
      s = skipSpace(s);
      if (!s.startsWith(',')) break;
      s = skipSpace(s.slice(1));
    }
  }
  return specs;
}

function skipSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return s.slice(i);
}

/** gddo expectQuality: "0" or "1", then optional decimals; -1 for anything else. */
function expectQuality(s: string): [number, string] {
  if (s[0] !== '0' && s[0] !== '1') return [-1, ''];
  let q = s[0] === '1' ? 1 : 0;
  s = s.slice(1);
  if (!s.startsWith('.')) return [q, s];
  s = s.slice(1);
  let i = 0;
  let n = 0;
  let d = 1;
  for (; i < s.length && s[i]! >= '0' && s[i]! <= '9'; i++) {
    n = n * 10 + Number(s[i]);
    d *= 10;
  }
  q += n / d;
  return [q, s.slice(i)];
}

/**
 * gddo httputil.NegotiateContentEncoding over promhttp's offers: the offer with the highest q (the first offer wins
 * a tie, `*` matches any), identity when nothing matches, and identity too where Go's returns "" (the best match has
 * q=0), as promhttp then falls back to an uncompressed body.
 */
export function negotiateContentEncoding(acceptEncoding: readonly string[]): ContentEncoding {
  let best: ContentEncoding = 'identity';
  let bestQ = -1;
  const specs = parseAccept(acceptEncoding);
  for (const offer of OFFERS)
    for (const spec of specs)
      if (spec.q > bestQ && (spec.value === '*' || spec.value === offer)) {
        bestQ = spec.q;
        best = offer;
      }
  return bestQ === 0 ? 'identity' : best;
}

/** The process's start in whole seconds since the epoch (legacyregistry's processStart, time.Time.Unix). */
export const PROCESS_START_UNIX = Math.floor(performance.timeOrigin / 1000);

/** promhttp.HandlerFor for one request: the registry in text format 0.0.4, compressed as negotiated. */
export function serveRegistry(req: IncomingMessage, res: ServerResponse, registry: Registry, opts: { processStartUnix?: number } = {}): void {
  const encoding = negotiateContentEncoding(req.headersDistinct['accept-encoding'] ?? []);
  void registry
    .metrics()
    .then(async (text) => {
      const headers: Record<string, string> = { 'Content-Type': registry.contentType };
      if (opts.processStartUnix !== undefined) headers['Process-Start-Time-Unix'] = String(opts.processStartUnix);
      if (encoding === 'identity') return void res.writeHead(200, headers).end(text);
      const body = await gzipAsync(text);
      res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip' }).end(body);
    })
    .catch((err: unknown) => {
      // promhttp's httpError: plain text, never compressed.
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`An error has occurred while serving metrics:\n\n${String(err)}\n`);
    });
}
