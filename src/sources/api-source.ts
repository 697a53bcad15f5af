/**
 * The API-server source: three client-node ListWatch informers (Services,
 * EndpointSlices, our own Node), each kept alive by a Supervisor and feeding
 * an ObjectTracker that emits ObjectEvents with the previous object.
 *
 * Selectors. Current upstream kube-proxy watches Services with the label
 * selector `!service.kubernetes.io/service-proxy-name` plus the field
 * selector `spec.clusterIP!=None`, but apiservers before 1.31 reject that
 * field selector (400 "field label not supported"). We use the older
 * upstream form that every apiserver accepts: label selector
 * `!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name`
 * on Services, and drop headless Services (clusterIP None) client-side, which
 * is what upstream's change tracker did before the field selector existed.
 * EndpointSlices: `!service.kubernetes.io/headless`. Node: field selector
 * `metadata.name=<nodeName>`. ListWatch does not pass its selectors to the
 * list function, so each list call repeats them.
 *
 * onSynced(kind) is called after each complete, successful list (initial and
 * relists), once its items have been reconciled; never on a failed list
 * (ListWatch.start() resolves even then). Every call into the handlers is
 * guarded: an exception is logged and reported, never thrown into
 * client-node (where it would become an unhandled rejection).
 */
import { ApiException, ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { ObjectKind, ObjectSource, SourceHandlers } from './events.ts';
import { GuardedWatch, isWellFormed, listRaw } from './kube-client.ts';
import { ObjectTracker } from './object-tracker.ts';
import { Supervisor, type BackoffOptions, type Run, type RunControl } from './supervisor.ts';
import { realClock, type Clock } from '../system/clock.ts';
import { silentLogger, type Logger } from '../log.ts';

export const SERVICE_LABEL_SELECTOR = '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name';
export const ENDPOINTSLICE_LABEL_SELECTOR = '!service.kubernetes.io/headless';

export interface InformerSpec {
  readonly kind: ObjectKind;
  readonly apiVersion: string;
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Client-side filter applied on top of the selectors. */
  readonly accept?: (obj: Record<string, unknown>) => boolean;
}

export function informerSpecs(nodeName: string): readonly InformerSpec[] {
  return [
    {
      kind: 'Service',
      apiVersion: 'v1',
      path: '/api/v1/services',
      labelSelector: SERVICE_LABEL_SELECTOR,
      accept: (svc) => (svc['spec'] as { clusterIP?: unknown } | undefined)?.clusterIP !== 'None',
    },
    { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: ENDPOINTSLICE_LABEL_SELECTOR },
    {
      kind: 'Node',
      apiVersion: 'v1',
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${nodeName}`,
      accept: (node) => (node['metadata'] as { name?: unknown }).name === nodeName,
    },
  ];
}

export interface ApiSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Restart backoff after an informer failure (default 1 s doubling to 30 s, 20 % jitter). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Restart an informer with no connect or event for this long (default 5 min). */
  readonly staleAfterMs?: number;
  /** Abort a list call after this long (default 60 s). */
  readonly listTimeoutMs?: number;
  /** Maps ListWatch's own delay between consecutive clean watch ends (1 s doubling to 30 s) to the delay used (tests shorten it). */
  readonly reconnectDelayMs?: (libraryDelayMs: number) => number;
}

/** "HTTP 503: message" for API errors (ApiException.code, Watch's statusCode), else the message and its cause. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | null | undefined;
    return `HTTP ${err.code}${typeof body?.message === 'string' ? `: ${body.message}` : ''}`;
  }
  const e = err as { statusCode?: unknown; message?: unknown; cause?: { message?: unknown } } | null;
  if (typeof e?.statusCode === 'number') return `HTTP ${e.statusCode}${typeof e.message === 'string' ? ` ${e.message}` : ''}`;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.cause?.message === 'string' ? `${message} (${e.cause.message})` : message;
}

function guard(h: SourceHandlers, log: Logger): Required<SourceHandlers> {
  const onProblem = (kind: ObjectKind | null, message: string, err?: unknown): void => {
    log.warn({ kind, err: err === undefined ? undefined : describeError(err) }, message);
    try {
      h.onProblem?.(kind, message, err);
    } catch (e) {
      log.error({ err: describeError(e) }, 'source onProblem handler threw');
    }
  };
  const call = (kind: ObjectKind, what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      onProblem(kind, `${what} handler threw`, err);
    }
  };
  return {
    onEvent: (ev) => call(ev.kind, `${ev.kind} ${ev.type} ${ev.key}`, () => h.onEvent(ev)),
    onSynced: (kind) => call(kind, `${kind} synced`, () => h.onSynced(kind)),
    onProblem,
  };
}

interface RunContext {
  readonly spec: InformerSpec;
  readonly kc: KubeConfig;
  readonly tracker: ObjectTracker;
  readonly handlers: Required<SourceHandlers>;
  readonly clock: Clock;
  readonly listTimeoutMs: number;
  readonly reconnectDelayMs: (ms: number) => number;
}

/** One informer instance: a fresh ListWatch (its cache starts empty; our tracker reconciles each list). */
async function startInformer(c: RunContext, control: RunControl): Promise<Run> {
  const { spec, tracker, handlers } = c;
  let closed = false;
  const problem = (message: string, err?: unknown): void => {
    if (!closed) handlers.onProblem(spec.kind, `${spec.kind} informer: ${message}`, err);
  };
  const watch = new GuardedWatch(c.kc, { onActivity: () => control.activity(), onDead: (err) => control.failed(err), onProblem: problem });
  const query = { labelSelector: spec.labelSelector, fieldSelector: spec.fieldSelector };
  const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
    const timeout = new AbortController();
    const timer = c.clock.setTimeout(() => timeout.abort(new Error(`list timed out after ${c.listTimeoutMs} ms`)), c.listTimeoutMs);
    try {
      const list = await listRaw(c.kc, spec.path, query, AbortSignal.any([control.signal, timeout.signal]));
      if (closed) throw new Error('informer stopped');
      const items = list.items.filter(isWellFormed);
      if (items.length !== list.items.length) problem(`dropped ${list.items.length - items.length} listed objects without metadata.name`);
      tracker.reconcile(items);
      handlers.onSynced(spec.kind);
      return { metadata: list.metadata, items: items as KubernetesObject[] };
    } finally {
      c.clock.clearTimeout(timer);
    }
  };
  const delayFn = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const done = (): void => {
        c.clock.clearTimeout(handle);
        control.signal.removeEventListener('abort', done);
        resolve();
      };
      const handle = c.clock.setTimeout(done, c.reconnectDelayMs(ms));
      control.signal.addEventListener('abort', done, { once: true });
    });
  const lw = new ListWatch<KubernetesObject>(spec.path, watch, listFn, false, spec.labelSelector, spec.fieldSelector, { delayFn });
  const live = (fn: (obj: KubernetesObject) => void) => (obj: KubernetesObject) => {
    if (!closed) fn(obj);
  };
  lw.on('add', live((obj) => tracker.upsert(obj)));
  lw.on('update', live((obj) => tracker.upsert(obj)));
  lw.on('delete', live((obj) => tracker.remove(obj)));
  lw.on('connect', () => control.activity());
  lw.on('error', (err: unknown) => {
    if (!closed) control.failed(err);
  });
  const run: Run = {
    stop: async () => {
      closed = true;
      watch.close();
      await lw.stop();
    },
  };
  try {
    await lw.start();
  } catch (err) {
    control.failed(err);
  }
  return run;
}

export function createApiSource(options: ApiSourceOptions): ObjectSource {
  const log = (options.logger ?? silentLogger()).child({ component: 'api-source' });
  const clock = options.clock ?? realClock;
  const specs = informerSpecs(options.nodeName);
  let supervisors: Supervisor[] | null = null;
  return {
    async start(h: SourceHandlers): Promise<void> {
      if (supervisors) throw new Error('api source already started');
      const handlers = guard(h, log);
      supervisors = specs.map((spec) => {
        // One tracker per kind for the life of this start(): informer restarts reconcile against it.
        const tracker = new ObjectTracker({ kind: spec.kind, apiVersion: spec.apiVersion, ...(spec.accept ? { accept: spec.accept } : {}), emit: (ev) => handlers.onEvent(ev) });
        const ctx: RunContext = {
          spec,
          kc: options.kubeConfig,
          tracker,
          handlers,
          clock,
          listTimeoutMs: options.listTimeoutMs ?? 60_000,
          reconnectDelayMs: options.reconnectDelayMs ?? ((ms) => ms),
        };
        return new Supervisor({
          name: `${spec.kind} informer`,
          start: (control) => startInformer(ctx, control),
          clock,
          ...(options.backoff ? { backoff: options.backoff } : {}),
          ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
          onRestart: (err, delayMs) => handlers.onProblem(spec.kind, `${spec.kind} informer failed (${describeError(err)}); restarting in ${delayMs} ms`, err),
        });
      });
      log.info({ nodeName: options.nodeName, selectors: specs.map((s) => ({ kind: s.kind, label: s.labelSelector, field: s.fieldSelector })) }, 'starting informers');
      await Promise.all(supervisors.map((s) => s.start()));
    },
    async stop(): Promise<void> {
      const running = supervisors ?? [];
      supervisors = null;
      await Promise.all(running.map((s) => s.stop()));
    },
  };
}
