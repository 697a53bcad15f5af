/**
 * The agent's HTTP client for the API server: Node's own http/https, with the request options client-node builds for
 * its https users (KubeConfig.applyToHTTPSOptions: the cluster's CA and TLS server name, client certificates, bearer
 * tokens from files, exec plugins and auth providers, basic auth, impersonation headers, and an agent through the
 * kubeconfig's proxy-url). kube-request.ts (lists, events) and kube-watch.ts (watches) send every request here.
 *
 * Not client-node's fetch (undici): undici parses HTTP in WebAssembly and wraps every body in WHATWG streams, and the
 * idle agent paid ~20 MiB resident for it (BENCHMARKS.md "The idle agent, fifth pass"); Node's http client parses in
 * C and is loaded anyway (the healthz and metrics servers).
 *
 * Connections are kept alive, with TCP keep-alive probes after 30 s idle (client-go's and client-node's dialer), on an
 * agent per set of TLS credentials: an exec plugin that rotates the client certificate gets a new agent, not a
 * connection made with the old one. Through a proxy, client-node's own agent for it is used (hpagent, socks).
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal?: AbortSignal | undefined;
}

/** The TLS fields applyToHTTPSOptions may set, copied into the keep-alive agent (as client-node copies them into its own). */
const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const;

const agents = new Map<string, { readonly key: string; readonly agent: http.Agent }>();

/** The keep-alive agent for these TLS credentials (one per server; replaced when the credentials change). */
function keepAliveAgent(url: URL, opts: https.RequestOptions): http.Agent {
  const tls: Record<string, unknown> = {};
  for (const f of TLS_FIELDS) if (opts[f] !== undefined) tls[f] = opts[f];
  const key = createHash('sha256')
    .update(JSON.stringify(Object.entries(tls).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('base64') : v])))
    .digest('hex');
  const cached = agents.get(url.origin);
  if (cached?.key === key) return cached.agent;
  if (cached) {
    // Retired: its idle connections close now, the busy ones (a watch) when their response ends.
    (cached.agent as http.Agent & { keepAlive: boolean }).keepAlive = false;
    for (const list of Object.values(cached.agent.freeSockets)) for (const socket of list ?? []) socket.destroy();
  }
  const options = { keepAlive: true, keepAliveMsecs: 30_000 };
  const agent = url.protocol === 'http:' ? new http.Agent(options) : new https.Agent({ ...options, ...tls });
  agents.set(url.origin, { key, agent });
  return agent;
}

/**
 * The URL of an API path on a cluster's server, with the query's defined parameters: the server as the kubeconfig
 * writes it, trailing slashes dropped (client-node drops one when it reads a file; `--master` and in-code configs keep
 * theirs), so the path never starts with `//`.
 */
export function apiUrl(server: string, path: string, query: Readonly<Record<string, string | number | boolean | undefined>> = {}): URL {
  const url = new URL(server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}

/** Sends one request; resolves with the response once its status and headers arrived, rejects on a transport error. */
export async function sendRequest(kc: KubeConfig, r: HttpRequest): Promise<IncomingMessage> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const agent = kc.getCurrentCluster()?.proxyUrl ? opts.agent : keepAliveAgent(r.url, opts);
  const send = r.url.protocol === 'http:' ? http.request : https.request;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(r.url, { ...opts, agent, method: r.method, headers: { ...opts.headers, ...r.headers }, signal: r.signal }, resolve);
    // An abort rejects with its reason (a list's timeout names itself), as fetch does.
    req.on('error', (err) => reject(r.signal?.aborted && r.signal.reason !== undefined ? r.signal.reason : err));
    req.end(r.body);
  });
}

/** The body of a response as text; rejects if the connection fails before its end (or the signal aborts it). */
export function readText(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    // An abort rejects with its reason (a list's timeout names itself), as fetch does.
    const failed = (err: unknown): void => reject(signal?.aborted && signal.reason !== undefined ? signal.reason : err);
    res.on('error', failed);
    res.on('aborted', () => failed(new Error('the connection closed before the end of the response')));
  });
}

/** Response headers as one string per name (lower-case names; repeated ones joined with ", "). */
export function headersOf(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
