/**
 * The two HTTP servers upstream runs: health (/healthz, /livez; default
 * 0.0.0.0:10256) and metrics (/metrics, /healthz ping, /proxyMode, /configz, and
 * kube-proxy-ts' /debug pages (debug.ts); default 127.0.0.1:10249). Both listen on a given host:port (port 0 in tests).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { HealthState } from './health-state.ts';
import { healthBody } from './health-state.ts';
import type { Metrics } from './metrics.ts';

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function listen(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RunningServer> {
  const server = createServer((req, res) => {
    try {
      handler(req, res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  const addr = server.address() as AddressInfo;
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
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
    const report = state.report(checkNode);
    const code = report.healthy ? 200 : 503;
    (checkNode ? metrics?.healthzTotal : metrics?.livezTotal)?.inc({ code: String(code) });
    res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(healthBody(report, checkNode));
  };
}

/**
 * The metrics server: /metrics, /healthz (a ping), /proxyMode, and /configz, which upstream installs there
 * (component-base configz): `{"kubeproxy.config.k8s.io": <the configuration the agent runs with>}` (here as
 * --write-config-to writes it, v1alpha1), or 404 when none is given; then the debug pages.
 */
export function metricsHandler(
  metrics: Metrics,
  mode: string,
  debug?: (req: IncomingMessage, res: ServerResponse) => boolean,
  configz?: Readonly<Record<string, unknown>>,
) {
  const configzBody = configz ? JSON.stringify({ 'kubeproxy.config.k8s.io': configz }) : null;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (debug?.(req, res)) return;
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    } else if (path === '/proxyMode') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(mode);
    } else if (path === '/configz' && configzBody !== null) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(configzBody);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
    }
  };
}
