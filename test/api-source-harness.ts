/**
 * Test helpers for the API source: a SourceHandlers recorder (ordered log of
 * events and synced signals, problems, and until() that waits on them with a
 * bounded timeout), Service/EndpointSlice/Node fixtures, and a harness that
 * gives each test a fresh fake API server and cleans up after it.
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { createApiSource, type ApiSourceOptions } from '../src/sources/api-source.ts';
import type { ObjectEvent, ObjectKind, ObjectSource, SourceHandlers } from '../src/sources/events.ts';
import { FakeApiServer, kubeConfigFor, type KubeObject } from './fake-apiserver.ts';

export function recorder(opts: { throwing?: boolean } = {}) {
  const log: string[] = [];
  const events: ObjectEvent[] = [];
  const problems: string[] = [];
  let waiters: Array<() => void> = [];
  const changed = (): void => waiters.forEach((w) => w());
  const handlers: SourceHandlers = {
    onEvent(ev) {
      events.push(ev);
      log.push(`${ev.type} ${ev.kind} ${ev.key}`);
      changed();
      if (opts.throwing) throw new Error(`handler broke on ${ev.key}`);
    },
    onSynced(kind) {
      log.push(`synced ${kind}`);
      changed();
      if (opts.throwing) throw new Error('synced handler broke');
    },
    onProblem(kind, message) {
      problems.push(`${kind}: ${message}`);
      changed();
    },
  };
  const until = (cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        waiters = waiters.filter((w) => w !== check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what}; log: ${JSON.stringify(log)}; problems: ${JSON.stringify(problems)}`));
      }, timeoutMs);
      waiters.push(check);
      check();
    });
  const synced = (kind: ObjectKind): number => log.filter((l) => l === `synced ${kind}`).length;
  return { log, events, problems, handlers, until, synced };
}

export const svc = (name: string, extra: { labels?: Record<string, string>; clusterIP?: string; port?: number } = {}): KubeObject => ({
  metadata: { name, namespace: 'default', ...(extra.labels ? { labels: extra.labels } : {}) },
  spec: { clusterIP: extra.clusterIP ?? '10.96.0.10', ports: [{ port: extra.port ?? 80, protocol: 'TCP' }] },
});
export const slice = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': name.split('-')[0]!, ...labels } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.1.5'] }],
});
export const node = (name: string): KubeObject => ({ metadata: { name }, spec: { podCIDR: '10.244.1.0/24' } });

export type Recorder = ReturnType<typeof recorder>;

export interface ApiSourceHarness {
  /** The fake server of the current test. */
  readonly server: FakeApiServer;
  /** Starts an API source with short back-offs (both: 100 ms doubling to 400 ms, no jitter) against the server (default: this test's); stopped after the test. */
  startSource(rec: Recorder, extra?: Partial<ApiSourceOptions>, on?: FakeApiServer): Promise<ObjectSource>;
  /** One Service (default/web), its EndpointSlice (default/web-abc) and our Node (node-1). */
  seed(): void;
}

/**
 * Registers beforeEach/afterEach: a fresh fake server per test, every source
 * stopped and the server closed afterwards, and no unhandled rejection allowed.
 */
export function useApiSourceHarness(): ApiSourceHarness {
  let current: FakeApiServer | null = null;
  let sources: ObjectSource[] = [];
  let rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  beforeEach(async () => {
    current = await FakeApiServer.start();
    sources = [];
    rejections = [];
    process.on('unhandledRejection', onRejection);
  });
  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await current?.close();
    process.off('unhandledRejection', onRejection);
    expect(rejections).toEqual([]);
  });
  const h: ApiSourceHarness = {
    get server(): FakeApiServer {
      if (!current) throw new Error('api source harness: no server outside a test');
      return current;
    },
    async startSource(rec, extra = {}, on = h.server) {
      const source = createApiSource({
        kubeConfig: kubeConfigFor(on),
        nodeName: 'node-1',
        backoff: { initialMs: 100, maxMs: 400, random: () => 0 },
        answeredBackoff: { initialMs: 100, maxMs: 400, random: () => 0 },
        reconnectDelayMs: (ms) => ms / 100,
        // Tests end watches right after they began (nothing sent yet): only a test that means it sees a very short watch.
        veryShortWatchMs: 0,
        ...extra,
      });
      sources.push(source);
      await source.start(rec.handlers);
      return source;
    },
    seed() {
      h.server.create('services', svc('web'));
      h.server.create('endpointslices', slice('web-abc'));
      h.server.create('nodes', node('node-1'));
    },
  };
  return h;
}
