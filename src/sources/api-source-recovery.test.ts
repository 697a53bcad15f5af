/**
 * How fast the API source recovers, with its real default back-offs (not the
 * harness's shortened ones): after an outage every informer watches again
 * within 5 s of the API answering (upstream's reflector backs off up to 60 s),
 * and a rotated service-account token the server now demands (401 for the
 * old one) is picked up at once; each failure reaches the log once. (How
 * often a failing API server is asked again, over simulated minutes:
 * api-source-backoff.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.ts';
import { loadKubeConfig } from '../kubeconfig.ts';
import { recorder, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';
import { serviceAccountVolume } from '../../test/fake-apiserver-sa.ts';
import { API_ANSWERED_BACKOFF, API_BACKOFF, cappedDelay } from './api-source.ts';
import { backoffDelay, DEFAULT_BACKOFF } from './supervisor.ts';
import { VERY_SHORT_WATCH_MS } from './kube-client.ts';

const h = useApiSourceHarness();
/** The source's real defaults, instead of the harness's shortened back-off. */
const DEFAULTS = {
  backoff: API_BACKOFF,
  answeredBackoff: API_ANSWERED_BACKOFF,
  reconnectDelayMs: cappedDelay(API_BACKOFF.maxMs!),
  veryShortWatchMs: VERY_SHORT_WATCH_MS,
};

describe('api source recovery', () => {
  it('caps the back-off after a failure the API server did not answer at 3 s (client-go reflector: 30 s, plus up to 100 %)', () => {
    const o = { ...DEFAULT_BACKOFF, ...API_BACKOFF, random: () => 0 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, o))).toEqual([800, 1600, 3000, 3000, 3000, 3000]);
    expect(backoffDelay(10, { ...o, random: () => 0.999999 })).toBe(2400);
  });

  it("backs off after a failure the API server answered as client-go v0.35's reflector (NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)): [0.8, 1.6) s doubling to [30, 60) s", () => {
    const o = { ...DEFAULT_BACKOFF, ...API_ANSWERED_BACKOFF, random: () => 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 20].map((a) => backoffDelay(a, o))).toEqual([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    // wait.Jitter(d, 1.0) = d + rand·d, rand in [0, 1).
    expect([0, 6].map((a) => backoffDelay(a, { ...o, random: () => 0.999999 }))).toEqual([1600, 60000]);
    expect(o.resetAfterMs).toBe(120_000);
  });

  it('watches again within 5 s of the API answering after a 7 s outage, with what changed meanwhile', async () => {
    h.seed();
    const rec = recorder();
    // (The watches the outage cuts began less than a second before: not very short watches, as they would not be.)
    await h.startSource(rec, { ...DEFAULTS, veryShortWatchMs: 0 });
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    await h.server.down();
    await new Promise((r) => setTimeout(r, 7000));
    h.server.create('services', svc('during-outage'));
    await h.server.up();
    const t0 = Date.now();
    await rec.until(() => rec.log.includes('add Service default/during-outage'), 'the Service created during the outage', 6000);
    await h.server.until(() => h.server.watchCount() === 3, 'all three informers watching', 6000);
    const ms = Date.now() - t0;
    console.log(`outage of 7 s: all three informers watching ${ms} ms after the API answered`);
    expect(ms).toBeLessThan(5000);
  }, 20_000);

  /** A kubeadm-style kubeconfig (certificate-authority file, tokenFile in a kubelet-written volume) for the harness's server. */
  async function kubeadmStyle(dir: string) {
    const sa = await serviceAccountVolume(join(dir, 'sa'), { token: 'token-1', caPem: h.server.pki.caPem });
    h.server.setTokens(['token-1']);
    await writeFile(
      join(dir, 'kubeconfig.conf'),
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- cluster: {server: "${h.server.url}", certificate-authority: ${join(sa.dir, 'ca.crt')}}`,
        '  name: default',
        'contexts:',
        '- context: {cluster: default, user: default}',
        '  name: default',
        'current-context: default',
        'users:',
        '- name: default',
        `  user: {tokenFile: ${sa.tokenFile}}`,
        '',
      ].join('\n'),
    );
    return { sa, kubeConfig: loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig.conf'), master: '' }) };
  }

  it('follows a token rotation at once: kubelet swaps ..data, the server refuses the old token, no request carries it again', async () => {
    h.seed();
    const dir = await mkdtemp(join(tmpdir(), 'kpt-rotate-'));
    try {
      const { sa, kubeConfig } = await kubeadmStyle(dir);
      const rec = recorder();
      // (The watches dropped below began less than a second before: not very short watches, as they would not be.)
      await h.startSource(rec, { ...DEFAULTS, veryShortWatchMs: 0, kubeConfig });
      await h.server.until(() => h.server.watchCount() === 3, 'three watches');
      const before = h.server.requests().length;
      const t0 = Date.now();
      await sa.rotate('token-2');
      h.server.setTokens(['token-2']);
      // The open watches end (as a real apiserver's do after their timeout) and the informers watch again.
      h.server.dropWatches();
      h.server.create('services', svc('after-rotation'));
      await rec.until(() => rec.log.includes('add Service default/after-rotation'), 'the Service created after the rotation', 5000);
      await h.server.until(() => h.server.watchCount() === 3, 'three watches with the new token', 5000);
      const ms = Date.now() - t0;
      const after = h.server.requests().slice(before);
      console.log(
        `token rotation: ${after.filter((r) => r.status === 401).length} requests answered 401, all three informers watching again ${ms} ms after the swap`,
      );
      expect(after.filter((r) => r.authorization !== 'Bearer token-2')).toEqual([]);
      expect(ms).toBeLessThan(2000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('retries a 401 at once, then backs off (0.8-1.6 s first) until the rotated token appears', async () => {
    h.seed();
    const dir = await mkdtemp(join(tmpdir(), 'kpt-rotate-'));
    try {
      const { sa, kubeConfig } = await kubeadmStyle(dir);
      const rec = recorder();
      // (The watches dropped below began less than a second before: not very short watches, as they would not be.)
      await h.startSource(rec, { ...DEFAULTS, veryShortWatchMs: 0, kubeConfig });
      await h.server.until(() => h.server.watchCount() === 3, 'three watches');
      const before = h.server.requests().length;
      // The server refuses token-1 before kubelet has written token-2.
      h.server.setTokens(['token-2']);
      h.server.dropWatches('nodes');
      await h.server.until(
        () =>
          h.server
            .requests()
            .slice(before)
            .filter((r) => r.status === 401).length >= 2,
        'a 401 and its immediate retry',
        3000,
      );
      const [first, second] = h.server
        .requests()
        .slice(before)
        .filter((r) => r.status === 401);
      expect(second!.at - first!.at).toBeLessThan(500);
      await sa.rotate('token-2');
      const t0 = Date.now();
      await h.server.until(() => h.server.watchCount('nodes') === 1, 'the Node informer watching with token-2', 5000);
      const ms = Date.now() - t0;
      console.log(`401 before the rotation: Node informer watching again ${ms} ms after the swap`);
      expect(ms).toBeLessThan(3500);
      expect(rec.problems.filter((p) => p.includes('401'))[0]).toMatch(
        /Node informer failed: HTTP 401 Unauthorized: the API server refused the credentials \(token expired or rotated\?\); retrying at once/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('logs an informer failure once: to the handler when it takes problems, else to its own log', async () => {
    h.seed();
    const lines: string[] = [];
    const stream = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    const logger = createLogger({ verbosity: 0, stream });
    h.server.failNext('nodes', 'list', 503);
    const rec = recorder();
    await h.startSource(rec, { logger });
    await rec.until(() => rec.synced('Node') === 1, 'the Node list after the failure');
    expect(rec.problems.filter((p) => p.includes('Node informer failed'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('informer failed'))).toEqual([]);

    const { handlers: _h, ...noProblemHook } = recorder();
    const bare = recorder();
    delete (bare.handlers as { onProblem?: unknown }).onProblem;
    void noProblemHook;
    h.server.failNext('services', 'list', 503);
    await h.startSource(bare, { logger });
    await bare.until(() => bare.synced('Service') === 1, 'the Service list after the failure');
    expect(lines.filter((l) => l.includes('Service informer failed'))).toHaveLength(1);
  });

  it("waits as long as a 429's or 503's Retry-After asks (client-go checkWait), on a list and on a watch; without one, the back-off's 0.8-1.6 s", async () => {
    h.seed();
    // API priority and fairness turns the Node list away with Retry-After: 2.
    h.server.failNext('nodes', 'list', 429, 1, 2);
    const rec = recorder();
    const t0 = Date.now();
    await h.startSource(rec, DEFAULTS);
    await rec.until(() => rec.synced('Node') === 1, 'the Node list after the 429', 6000);
    const lists = h.server.requests({ verb: 'list' }).filter((r) => r.resource === 'nodes');
    expect(lists.map((r) => r.status)).toEqual([429, 200]);
    const waited = lists[1]!.at - lists[0]!.at;
    console.log(`429 with Retry-After: 2 on a list: asked again ${waited} ms later (${Date.now() - t0} ms to the Node list)`);
    expect(waited).toBeGreaterThanOrEqual(2000);
    expect(rec.problems.find((p) => p.includes('429'))).toMatch(/Node informer failed: HTTP 429.*; restarting in 2000 ms/);

    // A watch turned away the same way, with Retry-After: 3 on a 503.
    const watchAskedAgainAfter = async (resource: 'services' | 'endpointslices', retryAfter?: number): Promise<number> => {
      await h.server.until(() => h.server.watchCount(resource) === 1, `the ${resource} watch`);
      const before = h.server.requests().length;
      h.server.failNext(resource, 'watch', 503, 1, retryAfter);
      h.server.dropWatches(resource);
      await h.server.until(() => h.server.watchCount(resource) === 1, `the ${resource} watch again`, 8000);
      const after = h.server
        .requests()
        .slice(before)
        .filter((r) => r.resource === resource);
      const refused = after.find((r) => r.status === 503)!;
      return after.find((r) => r.at > refused.at)!.at - refused.at;
    };
    const watched = await watchAskedAgainAfter('services', 3);
    console.log(`503 with Retry-After: 3 on a watch: asked again ${watched} ms later`);
    expect(watched).toBeGreaterThanOrEqual(3000);

    // Without Retry-After: the back-off of a failure the API server answered alone (800 ms, plus up to 100 % jitter).
    const answered = await watchAskedAgainAfter('endpointslices');
    expect(answered).toBeGreaterThanOrEqual(800);
    expect(answered).toBeLessThan(1800);
  }, 30_000);
});
