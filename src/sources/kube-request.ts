/**
 * One request to the API server, the raw way the list half of the informers (kube-list.ts) and the event recorder
 * (../events.ts) make them: through kube-http.ts (Node's http client with the kubeconfig's TLS and credentials), the
 * response body returned as text, and every request reported to the observer (rest_client metrics). Not through
 * client-node's generated API clients: those (de)serialise through every generated model class (lists turned into
 * model objects, timestamps into Dates; an Event's MicroTime written as JavaScript writes a Date, which the API
 * server refuses: events.ts), and importing one loads all of them (~2 MB of the bundle: BENCHMARKS.md).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CutResponseError, isObject, serverHost, type RequestObserver } from './kube-client.ts';
import { headersOf, readText, sendRequest } from './kube-http.ts';

export interface KubeResponse {
  readonly status: number;
  readonly text: string;
  readonly headers: Record<string, string>;
}

export interface KubeRequest {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  /** Sent as JSON (Content-Type application/json). */
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  readonly observe?: RequestObserver | undefined;
}

/**
 * The response whatever its status (the caller decides what a 4xx means); rejects on a transport error, with a
 * CutResponseError when the response was cut after its status came.
 */
export async function kubeRequest(kc: KubeConfig, r: KubeRequest): Promise<KubeResponse> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (r.body !== undefined) headers['Content-Type'] = 'application/json';
  const host = serverHost(kc.getCurrentCluster()?.server ?? '');
  const t0 = performance.now();
  const record = (code: string): void => r.observe?.({ method: r.method, host, code, seconds: (performance.now() - t0) / 1000 });
  let res;
  try {
    res = await sendRequest(kc, {
      method: r.method,
      url: r.url,
      headers,
      ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}),
      signal: r.signal,
    });
  } catch (err) {
    record('<error>');
    throw err;
  }
  const status = res.statusCode ?? 0;
  let text: string;
  try {
    text = await readText(res, r.signal);
  } catch (err) {
    record('<error>');
    // The server answered (it did the work): not a failure a retry soon costs it nothing (kube-client.ts serverAnswered).
    throw new CutResponseError(status, err);
  }
  record(String(status));
  return { status, text, headers: headersOf(res) };
}

/** The API server's Status message of a failed request, else the start of its body. */
export function failureMessage(text: string): { message: string; body: unknown } {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { message: isObject(body) && typeof body['message'] === 'string' ? body['message'] : text.slice(0, 200), body };
}
