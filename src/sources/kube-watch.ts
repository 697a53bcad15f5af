/**
 * One watch stream, as client-node's Watch.watch makes it, over kube-http.ts instead of undici's fetch: the same URL
 * (watch=true and the query; a server's trailing slash dropped, as apiUrl does for every request), the same end (done
 * exactly once: null when the stream ends or its connection fails, the error otherwise; an HTTP status other than 200 is an Error with
 * statusCode and the status text, before the call returns), one JSON event per line to the callback. Two timers: the
 * response must come within timing.responseMs, and then the stream may go timing.idleMs without a byte; on either
 * expiry the stream is aborted and done gets a TimeoutError (ListWatch watches again at once from its
 * resourceVersion). client-node's Watch has one timer for both, 30 s, which a quiet watch trips between the API
 * server's bookmarks (one a minute), so every quiet watch was made again twice a minute.
 * Unlike client-node's Watch, which skips a line that does not parse and reads on, a line that does not decode ends
 * the watch with an error ("unable to decode an event from the watch stream"), as client-go's StreamWatcher does, and
 * so does an Error the callback returns (GuardedWatch: an ERROR event, which client-go's reflector ends a watch on): an
 * event lost there would otherwise stay lost, the watch going on past it; the informer lists again instead. Nothing
 * after it reaches the callback. GuardedWatch (kube-client.ts) calls it in place of Watch.watch.
 */
import { STATUS_CODES } from 'node:http';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import { apiUrl, headersOf, sendRequest } from './kube-http.ts';

export type WatchCallback = (phase: string, apiObj: any, watchObj?: any) => void;
/** What httpWatch calls with each event; an Error it returns ends the watch with that error (done gets it). */
export type StreamCallback = (phase: string, apiObj: any, watchObj?: any) => Error | void;

export async function httpWatch(
  kc: KubeConfig,
  path: string,
  queryParams: Readonly<Record<string, string | number | boolean | undefined>>,
  callback: StreamCallback,
  done: (err: any) => void,
  timing: { readonly responseMs: number; readonly idleMs: number },
): Promise<AbortController> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  const url = apiUrl(cluster.server, path, { watch: 'true', ...queryParams });
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const clearTimer = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  let limitMs = timing.responseMs;
  const resetTimer = (): void => {
    clearTimer();
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, limitMs);
    timer.unref();
  };
  let doneCalled = false;
  const doneOnce = (err: unknown): void => {
    if (doneCalled) return;
    doneCalled = true;
    clearTimer();
    controller.abort();
    done(err && timedOut ? new DOMException('The operation was aborted due to timeout', 'TimeoutError') : err);
  };
  try {
    resetTimer();
    const res = await sendRequest(kc, { method: 'GET', url, signal: controller.signal });
    if (res.statusCode !== 200) {
      // The body is not read; a connection that fails while it drains must not be an unhandled 'error'.
      res.on('error', () => undefined);
      res.resume();
      const error = new Error(res.statusMessage || STATUS_CODES[res.statusCode ?? 500] || 'Internal Server Error') as Error & {
        statusCode?: number;
        headers?: Record<string, string>;
      };
      error.statusCode = res.statusCode ?? 500;
      // Retry-After among them (kube-client.ts retryAfterMs).
      error.headers = headersOf(res);
      throw error;
    }
    // The response has come: from here on the timer is an inactivity timeout.
    limitMs = timing.idleMs;
    resetTimer();
    // A connection that fails mid-stream (reset, cut, keep-alive probes unanswered) ends the watch as its end does, as
    // client-go's StreamWatcher.receive ends one on an unexpected EOF, a reset or a timeout: ListWatch watches again
    // from its resourceVersion, instead of the informer listing everything again.
    const cut = (): void => doneOnce(timedOut ? new Error('timed out') : null);
    res.on('error', cut);
    res.on('close', cut);
    res.on('end', () => doneOnce(null));
    res.on('data', resetTimer);
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    lines.on('error', cut);
    lines.on('line', (line) => {
      // Lines of a chunk read after the watch ended (an error, an abort) are not events of it any more.
      if (doneCalled) return;
      let data: { type: string; object: unknown };
      try {
        data = JSON.parse(line) as typeof data;
        if (typeof data !== 'object' || data === null) throw new Error(`not an object: ${line.slice(0, 80)}`);
      } catch (err) {
        doneOnce(new Error(`unable to decode an event from the watch stream: ${(err as Error).message}`));
        return;
      }
      let end: Error | void = undefined;
      try {
        end = callback(data.type, data.object, data);
      } catch {
        // a callback that throws is skipped, as client-node's Watch skips it
      }
      if (end instanceof Error) doneOnce(end);
    });
  } catch (err) {
    doneOnce(err);
  }
  return controller;
}
