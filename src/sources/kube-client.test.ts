/**
 * GuardedWatch against the fake API server: a ListWatch fed malformed watch
 * lines (which would crash client-node's async handler) keeps going; non-410
 * error Statuses are reported; a closed GuardedWatch starts nothing; every
 * watch request is reported with its status code.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiException, KubeConfig, ListWatch, type KubernetesObject } from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor } from '../../test/fake-apiserver.ts';
import {
  CutResponseError,
  GuardedWatch,
  RETRY_AFTER_TRIES,
  retryAfterMs,
  serverAnswered,
  serverHost,
  tlsProblem,
  VeryShortWatchError,
  watchRetriable,
  type RequestRecord,
} from './kube-client.ts';
import { listRaw } from './kube-list.ts';

let server: FakeApiServer;
let rejections: unknown[];
const onRejection = (reason: unknown): void => void rejections.push(reason);
beforeEach(async () => {
  server = await FakeApiServer.start();
  rejections = [];
  process.on('unhandledRejection', onRejection);
});
afterEach(async () => {
  await server.close();
  process.off('unhandledRejection', onRejection);
  expect(rejections).toEqual([]);
});

describe('serverHost', () => {
  it("keeps the host as written, as Go's url.Host", () => {
    expect(serverHost('https://k8s-api.example:6443')).toBe('k8s-api.example:6443');
    expect(serverHost('https://10.0.0.1:443/prefix')).toBe('10.0.0.1:443');
    expect(serverHost('https://[fd00::1]:6443')).toBe('[fd00::1]:6443');
  });
});

describe('GuardedWatch under ListWatch', () => {
  it('reports every watch request with its status code (rest_client_requests_total counts watches)', async () => {
    const observed: RequestRecord[] = [];
    const hooks = { onActivity: () => {}, onDead: () => {}, onProblem: () => {}, observe: (r: RequestRecord) => void observed.push(r) };
    const ok = new GuardedWatch(kubeConfigFor(server), hooks);
    await ok.watch(
      '/api/v1/nodes',
      { resourceVersion: '1' },
      () => {},
      () => {},
    );
    const refused = new GuardedWatch(kubeConfigFor(server, 'stale-token'), hooks);
    const done: unknown[] = [];
    await refused.watch(
      '/api/v1/nodes',
      { resourceVersion: '1' },
      () => {},
      (err) => done.push(err),
    );
    expect(observed.map((r) => [r.method, r.code, r.seconds])).toEqual([
      ['GET', '200', undefined],
      ['GET', '401', undefined],
    ]);
    expect((done[0] as { statusCode?: number }).statusCode).toBe(401);
    ok.close();
  });

  it('drops malformed events and reports them, and later events still arrive', async () => {
    const kc = kubeConfigFor(server);
    const problems: string[] = [];
    const dead: unknown[] = [];
    const watch = new GuardedWatch(kc, { onActivity: () => {}, onDead: (e) => dead.push(e), onProblem: (m) => problems.push(m) });
    const lw = new ListWatch<KubernetesObject>(
      '/api/v1/nodes',
      watch,
      () => listRaw(kc, '/api/v1/nodes', {}, new AbortController().signal) as never,
      false,
    );
    const added: string[] = [];
    lw.on('add', (o) => added.push(o.metadata!.name!));
    try {
      await lw.start();
      expect(server.requests({ verb: 'watch' })[0]!.query).toMatchObject({ allowWatchBookmarks: 'true' });
      server.injectRaw(
        'nodes',
        '{"type":"ADDED","object":{"kind":"Node"}}\n{"type":"BOOKMARK","object":null}\n{"type":"WHAT","object":{}}\n{"type":"ADD',
      );
      server.injectRaw('nodes', 'ED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","resourceVersion":"77"}}}\n');
      await expect.poll(() => added, { timeout: 2000, interval: 5 }).toEqual(['n1']);
      expect(problems).toEqual([
        'watch: dropped malformed ADDED event (object without metadata.name)',
        'watch: dropped malformed BOOKMARK event',
        'watch: dropped event of unknown type "WHAT"',
      ]);
      expect(lw.latestResourceVersion()).toBe('77');
      expect(dead).toEqual([]);
    } finally {
      watch.close();
      await lw.stop();
    }
  });

  // client-go: StreamWatcher.receive ends a watch on an event it cannot decode, and the reflector's watchHandler on an
  // ERROR event; the informer then lists again (api-source-resilience.test.ts).
  for (const [what, bad, expected] of [
    ['a line that does not decode', 'not json\n', { message: /^unable to decode an event from the watch stream: / }],
    ['a line that is not an object', 'null\n', { message: /^unable to decode an event from the watch stream: not an object: null/ }],
    [
      'an ERROR event other than 410',
      '{"type":"ERROR","object":{"kind":"Status","code":500,"message":"internal"}}\n',
      { message: 'in the watch stream: internal', statusCode: 500 },
    ],
  ] as const)
    it(`ends the watch with an error on ${what}, and passes on nothing after it`, async () => {
      const kc = kubeConfigFor(server);
      const watch = new GuardedWatch(kc, { onActivity: () => {}, onDead: () => {}, onProblem: () => {} });
      const phases: string[] = [];
      const done: unknown[] = [];
      await watch.watch(
        '/api/v1/nodes',
        { resourceVersion: '1' },
        (phase) => void phases.push(phase),
        (err) => done.push(err),
      );
      await server.until(() => server.watchCount() === 1, 'the watch');
      server.injectRaw('nodes', `{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"5"}}}\n${bad}`);
      server.injectRaw('nodes', '{"type":"ADDED","object":{"kind":"Node","metadata":{"name":"after","resourceVersion":"6"}}}\n');
      await expect.poll(() => done, { timeout: 2000, interval: 5 }).toHaveLength(1);
      expect(done[0]).toMatchObject(expected);
      await server.until(() => server.watchCount() === 0, 'the stream to close');
      expect(phases).toEqual(['BOOKMARK']);
      watch.close();
    });

  it('once closed, aborts its stream and starts no new watch', async () => {
    const kc = kubeConfigFor(server);
    const watch = new GuardedWatch(kc, { onActivity: () => {}, onDead: () => {}, onProblem: () => {} });
    const done: unknown[] = [];
    await watch.watch(
      '/api/v1/nodes',
      { resourceVersion: '1' },
      () => {},
      (err) => done.push(err),
    );
    await server.until(() => server.watchCount() === 1, 'the watch');
    watch.close();
    await server.until(() => server.watchCount() === 0, 'the watch to close');
    await watch.watch(
      '/api/v1/nodes',
      { resourceVersion: '1' },
      () => {},
      (err) => done.push(err),
    );
    expect(server.requests({ verb: 'watch' })).toHaveLength(1);
    expect(done).toEqual([]);
  });

  it('reports a watch that cannot even be started as dead instead of rejecting', async () => {
    const kc = kubeConfigFor(server);
    await server.down();
    const dead: unknown[] = [];
    const watch = new GuardedWatch(kc, { onActivity: () => {}, onDead: (e) => dead.push(e), onProblem: () => {} });
    const done: unknown[] = [];
    await watch.watch(
      '/api/v1/nodes',
      {},
      () => {},
      (err) => done.push(err),
    );
    // A refused connection goes to done (ListWatch turns it into an error event), not to onDead.
    expect(done).toHaveLength(1);
    const broken = new GuardedWatch(kc, { onActivity: () => {}, onDead: (e) => dead.push(e), onProblem: () => {} });
    broken.config = { getCurrentCluster: () => null } as never;
    await broken.watch(
      '/api/v1/nodes',
      {},
      () => {},
      () => {},
    );
    expect(String(dead[0])).toContain('No currently active cluster');
  });
});

describe('retryAfterMs (client-go checkWait)', () => {
  const failure = (statusCode: number, retryAfter?: string) =>
    Object.assign(new Error('x'), { statusCode, headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } });
  // client-go's retryAfterSeconds: strconv.Atoi of the header (a sign allowed, no HTTP date); a wait of 0 or less is
  // not a floor here (its rest client would ask again at once).
  it('reads whole seconds on a 429 or a 5xx, capped at a minute, as strconv.Atoi reads them; nothing else', () => {
    expect(retryAfterMs(failure(429, '1'))).toBe(1000);
    expect(retryAfterMs(failure(429, '+5'))).toBe(5000);
    expect(retryAfterMs(failure(429, '-5'))).toBeNull();
    expect(retryAfterMs(failure(429, '5s'))).toBeNull();
    expect(retryAfterMs(failure(503, ' 7 '))).toBe(7000);
    expect(retryAfterMs(failure(500, '3600'))).toBe(60_000);
    expect(retryAfterMs(failure(429))).toBeNull();
    expect(retryAfterMs(failure(429, '0'))).toBeNull();
    expect(retryAfterMs(failure(429, '1.5'))).toBeNull();
    expect(retryAfterMs(failure(429, 'Fri, 04 Dec 2026 12:00:00 GMT'))).toBeNull();
    expect(retryAfterMs(failure(403, '5'))).toBeNull();
    expect(retryAfterMs(new Error('ECONNREFUSED'))).toBeNull();
  });

  it('watchRetriable: a watch refused or answered 429 is asked again (Reflector.watch isWatchErrorRetriable), and one a 5xx turned away with a Retry-After or a reset under the request up to 10 times (Request.Watch checkWait, IsProbableEOF); anything else is listed again', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect(watchRetriable(refused, 0)).toBe(true);
    expect(watchRetriable(new Error('watch failed', { cause: refused }), 0)).toBe(true);
    expect(watchRetriable(failure(429), 0)).toBe(true);
    expect(watchRetriable(failure(429, '5'), 100)).toBe(true);
    expect(watchRetriable(failure(503, '5'), RETRY_AFTER_TRIES - 1)).toBe(true);
    expect(watchRetriable(failure(503, '5'), RETRY_AFTER_TRIES)).toBe(false);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(watchRetriable(reset, RETRY_AFTER_TRIES - 1)).toBe(true);
    expect(watchRetriable(reset, RETRY_AFTER_TRIES)).toBe(false);
    for (const other of [
      failure(503),
      failure(500),
      failure(403),
      failure(401),
      failure(410),
      Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }),
      new Error('unable to decode an event from the watch stream'),
    ])
      expect(watchRetriable(other, 0)).toBe(false);
  });
});

// Which back-off a failure waits (api-source.ts): client-go's reflector's, up to 30-60 s, when the API server answered
// it; 3 s at most when it did not (a retry costs it nothing).
describe('serverAnswered', () => {
  const code = (c: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${c} error`), { code: c, ...extra });
  it('an HTTP error, an ERROR event, a very short watch, a response that does not decode or was cut after its status, a TLS handshake: answered', () => {
    for (const err of [
      Object.assign(new Error('Forbidden'), { statusCode: 403 }),
      Object.assign(new Error('in the watch stream: unable to transform'), { statusCode: 500 }),
      new ApiException(503, 'list /api/v1/services: unavailable', {}, {}),
      new VeryShortWatchError('/api/v1/services'),
      new Error('list /api/v1/services: response is not JSON (<html>)'),
      new Error('unable to decode an event from the watch stream: Unexpected token'),
      new CutResponseError(200, code('ECONNRESET', { message: 'aborted' })),
      code('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    ])
      expect([String(err), serverAnswered(err)]).toEqual([String(err), true]);
  });

  it('refused, reset before an answer, timed out, no such name, no route, a file not read: not answered', () => {
    const refused = code('ECONNREFUSED', { syscall: 'connect', address: '127.0.0.1', port: 6443 });
    for (const err of [
      refused,
      Object.assign(new AggregateError([refused, code('ECONNREFUSED')]), { code: 'ECONNREFUSED' }),
      new Error('watch failed', { cause: refused }),
      code('ECONNRESET', { message: 'socket hang up' }),
      code('ETIMEDOUT', { message: 'list timed out after 60000 ms' }),
      new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
      code('ENOTFOUND', { syscall: 'getaddrinfo', hostname: 'k8s-api' }),
      code('EAI_AGAIN', { syscall: 'getaddrinfo' }),
      code('EHOSTUNREACH', { syscall: 'connect' }),
      code('ENOENT', { syscall: 'connect', address: '/run/k8s.sock' }),
      code('ENOENT', { syscall: 'open', path: '/etc/kubernetes/pki/ca.crt' }),
    ])
      expect([String(err), serverAnswered(err)]).toEqual([String(err), false]);
  });
});

describe('tlsProblem on an OpenSSL error raised before a request is sent', () => {
  const ossl = Object.assign(new Error('error:05800074:x509 certificate routines::key values mismatch'), {
    code: 'ERR_OSSL_X509_KEY_VALUES_MISMATCH',
  });
  it('names the client certificate and key, and only for a user that has them', () => {
    const withCert = new KubeConfig();
    withCert.loadFromClusterAndUser(
      { name: 'c', server: 'https://192.0.2.1:6443', skipTLSVerify: false },
      { name: 'u', certData: 'AA==', keyData: 'AA==' },
    );
    expect(tlsProblem(ossl, withCert)).toBe(
      'TLS: the client-certificate-data and client-key-data of user u cannot be used: key values mismatch (ERR_OSSL_X509_KEY_VALUES_MISMATCH)',
    );
    const withToken = new KubeConfig();
    withToken.loadFromClusterAndUser({ name: 'c', server: 'https://192.0.2.1:6443', skipTLSVerify: false }, { name: 'u', token: 't' });
    expect(tlsProblem(ossl, withToken)).toBeNull();
  });
});
