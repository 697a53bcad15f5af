/**
 * The two HTTP servers upstream runs: health (/healthz, /livez; default
 * 0.0.0.0:10256) and metrics (/metrics, /healthz ping, /proxyMode, /configz, /flagz, /statusz, and
 * kube-proxy-ts' /debug pages (debug.ts); default 127.0.0.1:10249). Both listen on a given host:port (port 0 in tests).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { HealthState } from './health-state.ts';
import { healthBody, servesOK } from './health-state.ts';
import type { Metrics } from './metrics.ts';
import { PROCESS_START_UNIX, serveRegistry } from './promhttp.ts';
import { goQuote } from '../log.ts';
import { aggregatePaths, flagzHandler, statuszHandler, type StatuszInfo, type ZpageDeps } from './zpages.ts';

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listens on host:port. 0.0.0.0 (or no host) is every address of both families, as Go's net.Listen("tcp") makes it
 * (one [::] socket taking IPv4 too, or 0.0.0.0 on a kernel without IPv6), so an IPv6 probe of the node reaches the
 * health and healthCheckNodePort servers; the url still shows the address asked for.
 */
export async function listen(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RunningServer> {
  const server = createServer((req, res) => {
    try {
      handler(req, res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  const wildcard = host === '' || host === '0.0.0.0';
  // Node without a host: [::] with IPv6 only off when the kernel has IPv6, else 0.0.0.0.
  if (wildcard) server.listen(port);
  else server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  const addr = server.address() as AddressInfo;
  const h = wildcard ? '0.0.0.0' : addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    port: addr.port,
    url: `http://${h}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function healthHandler(state: HealthState, metrics: Metrics | null) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    const checkNode = path === '/healthz';
    const report = state.report();
    const code = servesOK(report, checkNode) ? 200 : 503;
    (checkNode ? metrics?.healthzTotal : metrics?.livezTotal)?.inc({ code: String(code) });
    res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(healthBody(report, checkNode));
  };
}

/** A named health check, as component-base's healthz.HealthChecker: null when healthy, else why not. */
export interface HealthCheck {
  readonly name: string;
  check(): string | null;
}

/** healthz.PingHealthz: the one check upstream's metrics server installs (healthz.InstallHandler with none given). */
export const PING_CHECK: HealthCheck = { name: 'ping', check: () => null };

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

/**
 * component-base's healthz.handleRootHealth for the checks under /<name>: `?exclude=<check>` (repeatable) skips a
 * check, naming any that match none; `?verbose` lists each check; a failing check makes it 500 with the list, its
 * reason withheld (the endpoint is public). Each check run is recorded as an SLI (slis.ObserveHealthcheck).
 */
export function rootHealth(
  name: string,
  checks: readonly HealthCheck[],
  query: URLSearchParams,
  observe?: (check: string, ok: boolean) => void,
): { code: number; body: string } {
  const excluded = new Set(query.getAll('exclude'));
  let listing = '';
  let failed = false;
  for (const c of checks) {
    if (excluded.delete(c.name)) {
      listing += `[+]${c.name} excluded: ok\n`;
      continue;
    }
    const ok = c.check() === null;
    observe?.(c.name, ok);
    listing += ok ? `[+]${c.name} ok\n` : `[-]${c.name} failed: reason withheld\n`;
    failed ||= !ok;
  }
  if (excluded.size > 0) listing += `warn: some health checks cannot be excluded: no matches for ${[...excluded].sort().map(goQuote).join(',')}\n`;
  // http.Error appends a newline; success is "ok" unless verbose.
  if (failed) return { code: 500, body: `${listing}${name} check failed\n` };
  return { code: 200, body: query.has('verbose') ? `${listing}${name} check passed\n` : 'ok' };
}

/** What the metrics server serves besides /metrics, /metrics/slis, /healthz and /proxyMode. */
export interface MetricsServerOptions {
  /** kube-proxy-ts' /debug pages (debug.ts): true when it answered the request. */
  readonly debug?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** The configuration the agent runs with, served at /configz. */
  readonly configz?: Readonly<Record<string, unknown>>;
  /**
   * With --profiling: upstream's DebugFlags, /debug/flags/v (a PUT of a new -v: StringFlagPutHandler over GlogSetter)
   * and the index page at /debug/flags and every other path under it.
   */
  readonly setVerbosity?: (value: string) => { readonly ok: boolean; readonly message: string };
  /** With ComponentFlagz: the command line's flags, served at /flagz (zpages.ts). */
  readonly flagz?: Readonly<Record<string, string>>;
  /** With ComponentStatusz: /statusz (zpages.ts); its paths are the ones this server lists. */
  readonly statusz?: Omit<StatuszInfo, 'paths'>;
  /** The z-pages' clock and separator choice (default: the wall clock, Math.random). */
  readonly zpages?: Partial<ZpageDeps>;
}

/**
 * The metrics server, as upstream's serveMetrics builds it: /metrics (legacyregistry.Handler: promhttp.ts); /healthz with component-base's ping check
 * (and /healthz/ping, ?verbose, ?exclude); /metrics/slis, the SLI metrics those checks record (DELETE resets them:
 * SLIMetricsWithReset); /proxyMode; and /configz, which upstream installs there (component-base configz):
 * `{"kubeproxy.config.k8s.io": <the configuration the agent runs with>}` (here as --write-config-to writes it,
 * v1alpha1), or 404 when none is given; /flagz and /statusz when their gates are on; then the debug pages.
 */
export function metricsHandler(metrics: Metrics, mode: string, options: MetricsServerOptions = {}) {
  const { debug, configz, setVerbosity } = options;
  const zdeps: ZpageDeps = { now: Date.now, random: Math.random, ...options.zpages };
  const component = 'kube-proxy';
  const flagz = options.flagz ? flagzHandler(component, options.flagz, zdeps) : null;
  // statusz.WithListedPaths(proxyMux.ListedPaths()) when statusz is installed: what came before it, /flagz included.
  const listed = ['/healthz', '/healthz/ping', '/metrics/slis', '/proxyMode', '/metrics'];
  if (configz) listed.push('/configz');
  if (flagz) listed.push('/flagz');
  if (debug) listed.push('/debug/rules', '/debug/services', '/debug/traffic');
  const statusz = options.statusz ? statuszHandler(component, { ...options.statusz, paths: aggregatePaths(listed) }, zdeps) : null;
  const configzBody = configz ? JSON.stringify({ 'kubeproxy.config.k8s.io': configz }) : null;
  const checks = [PING_CHECK];
  const observe = (check: string, ok: boolean): void => metrics.slis.observeHealthcheck(check, 'healthz', ok);
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (debug?.(req, res)) return;
    let single: HealthCheck | undefined;
    if (path === '/metrics') {
      serveRegistry(req, res, metrics.registry, { processStartUnix: PROCESS_START_UNIX });
    } else if (path === '/metrics/slis') {
      if (req.method === 'DELETE') {
        metrics.slis.registry.resetMetrics();
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics reset\n');
      } else serveRegistry(req, res, metrics.slis.registry);
    } else if (path === '/healthz') {
      const r = rootHealth('healthz', checks, new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), observe);
      res.writeHead(r.code, TEXT).end(r.body);
    } else if ((single = checks.find((c) => path === `/healthz/${c.name}`))) {
      // healthz.adaptCheckToHandler: one check, not recorded as an SLI.
      const reason = single.check();
      if (reason === null) res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
      else res.writeHead(500, TEXT).end(`internal server error: ${reason}\n`);
    } else if (path === '/proxyMode') {
      res.writeHead(200, TEXT).end(mode);
    } else if (path === '/flagz' && flagz) {
      flagz(req, res);
    } else if (path === '/statusz' && statusz) {
      statusz(req, res);
    } else if (path === '/configz' && configzBody !== null) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(configzBody);
    } else if (path === '/debug/flags/v' && setVerbosity) {
      const plain = (code: number, body: string): void => void res.writeHead(code, TEXT).end(body);
      if (req.method !== 'PUT') return plain(406, 'unsupported http method');
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 1024) req.destroy();
      });
      req.on('end', () => {
        const r = setVerbosity(body);
        plain(r.ok ? 200 : 400, r.message);
      });
    } else if ((path === '/debug/flags' || path.startsWith('/debug/flags/')) && setVerbosity) {
      // DebugFlags.Index: every other path under /debug/flags, as component-base's template writes it for "v".
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(DEBUG_FLAGS_INDEX);
    } else {
      res.writeHead(404, TEXT).end('404 page not found\n');
    }
  };
}

/** component-base routes.DebugFlags' index page (indexTmpl) with its one flag, "v". */
export const DEBUG_FLAGS_INDEX =
  '<html>\n<head>\n<title>/debug/flags/</title>\n</head>\n<body>\n/debug/flags/<br>\n<br>\nflags:<br>\n<table>\n\n<tr>v<br>\n\n</table>\n<br>\nfull flags configurable<br>\n</body>\n</html>\n';
