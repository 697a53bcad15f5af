/**
 * The API-server source: three client-node ListWatch informers (Services,
 * EndpointSlices, our own Node), plus ServiceCIDRs when asked (the nftables
 * mode), each kept alive by a Supervisor and feeding an ObjectTracker that
 * emits ObjectEvents with the previous object.
 *
 * ServiceCIDRs (networking.k8s.io/v1, served from Kubernetes 1.33; v1beta1,
 * which 1.31-1.32 serve, when the server answers 404 for v1) are
 * optional, where upstream's informer logs a failed list every 30-60 s
 * forever: an API server that does not serve them (404) or a role that does
 * not grant them (403) is reported once per attempt, counts as listed (with
 * what was known before, at first nothing) so that nothing waits for it, and
 * is asked again every OPTIONAL_RETRY_MS, not every 30-60 s from every
 * node.
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
 * list function, so each list call repeats them. Each list asks the
 * resourceVersion client-go's reflector would (kube-list.ts listSynced): the
 * informer's last one, from its lists, events and bookmarks, is kept across
 * its restarts, so they are answered from the API server's watch cache.
 *
 * onSynced(kind) is called after each complete, successful list (initial and
 * relists), once its items have been reconciled; never on a failed list
 * (ListWatch.start() resolves even then). Every call into the handlers is
 * guarded: an exception is logged and reported, never thrown into
 * client-node (where it would become an unhandled rejection).
 *
 * Back-off: two, each with its own streak, both started over after 2 min
 * without a failure (client-go v0.35's reflector waits one back-off,
 * tools/cache/reflector.go NewReflectorWithOptions: backoffManager =
 * wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0), around
 * ListAndWatch and for the watch errors it retries):
 * - a failure the API server answered (kube-client.ts serverAnswered: an HTTP
 *   error, a very short watch, a response that does not decode or was cut) is
 *   retried after the reflector's delays, API_ANSWERED_BACKOFF: 0.8 s doubling
 *   to 30 s, plus up to as much again (wait.Jitter(d, 1.0)), so a permanent 403
 *   (RBAC removed) or a watch the server always ends at once costs it a list
 *   every 30-60 s from each node, as upstream's kube-proxy does, not every 3 s;
 * - one it did not answer (refused, reset before an answer, timed out, a name
 *   that does not resolve) costs it nothing, and is retried after
 *   API_BACKOFF's: 0.8 s doubling to at most 3 s, less up to 20 %, so every
 *   informer is watching again within 3 s of the API server's return (client-go:
 *   up to 60 s, its one back-off grown during the outage); and so is a 429 or
 *   5xx with a Retry-After (a refusal that costs the server little), never
 *   sooner than it asks (client-go's rest client asks again after it, checkWait);
 * - a streak of answered failures does not start where an outage left the
 *   other one: the first error the API server answers after it is retried after
 *   0.8-1.6 s (client-go: 30-60 s by then);
 * - ListWatch's own delay between consecutive watch ends (1 s doubling to 30 s;
 *   client-go makes such a watch again at once) is capped at 3 s too;
 * - as soon as one informer's list succeeds or its watch is answered, the
 *   others waiting after a failure the API server did not answer go at once
 *   (it is back);
 * - a watch refused or turned away (kube-client.ts watchRetriable: connection
 *   refused, 429, a 5xx with Retry-After, a reset under the request) is asked
 *   again from its resourceVersion after the back-off, not followed by a list,
 *   as client-go's reflector does (an API server that still has the history
 *   goes on from there; one restarted with a new watch cache answers 410, and
 *   the informer lists); a watch that ends within a second with nothing
 *   received is an error and the informer lists (a "very short watch");
 * - a 401 is retried at once (once per back-off streak): the token file is
 *   re-read whenever it changed (kubeconfig-token.ts), so a rotated
 *   service-account token is picked up by that retry.
 * Problems go to the handlers' onProblem (the agent logs them), once each;
 * the same failure repeating is reported at most every 30 s per informer.
 */
import { ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { ObjectKind, ObjectSource, SourceHandlers } from './events.ts';
import { GuardedWatch, isWellFormed, retryAfterMs, serverAnswered, statusOf, type RequestObserver } from './kube-client.ts';
import { listRaw, listSynced, newListState, type ListState } from './kube-list.ts';
import { describeError, guard, repeatFilter, REPEAT_REPORT_MS } from './api-problems.ts';
import { ObjectTracker } from './object-tracker.ts';
import { retainedFields } from './retained-fields.ts';
import { Supervisor, type BackoffOptions, type Run, type RunControl } from './supervisor.ts';
import type { Clock } from '../../proxier/clock.ts';
import { realClock } from '../system/clock.ts';
import { silentLogger, type Logger } from '../../proxier/log.ts';

/** Back-off after a failure the API server did not answer: 0.8 s doubling to 3 s, less up to 20 % (the jitter's default). */
export const API_BACKOFF: Partial<BackoffOptions> = { initialMs: 800, maxMs: 3000 };
/**
 * Back-off after a failure the API server answered: client-go v0.35's reflector's, NewExponentialBackoffManager(800ms,
 * 30s, 2min, 2.0, 1.0): Backoff.Step's Duration doubles from 0.8 s up to its Cap, 30 s, and each wait is wait.Jitter(
 * Duration, 1.0), Duration plus up to as much again: [0.8, 1.6) s, [1.6, 3.2) s, ... [30, 60) s; getNextBackoff starts
 * over after 2 min without a wait.
 */
export const API_ANSWERED_BACKOFF: Partial<BackoffOptions> = {
  initialMs: 800,
  maxMs: 30_000,
  factor: 2,
  jitter: 1,
  jitterAdds: true,
  resetAfterMs: 120_000,
};
/** ListWatch's delay between consecutive watch ends (1 s doubling to 30 s), capped (the default reconnectDelayMs). */
export const cappedDelay =
  (capMs: number) =>
  (libraryDelayMs: number): number =>
    Math.min(libraryDelayMs, capMs);

/** How often a resource the API server does not serve (or the role does not grant) is asked for again. */
export const OPTIONAL_RETRY_MS = 300_000;

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
  /** What the agent does without it, when the API server does not serve it (404) or the role does not grant it (403). */
  readonly optional?: string;
  /** Other versions of the resource, asked for in turn when the server answers 404 for the one in use. */
  readonly otherVersions?: readonly { readonly apiVersion: string; readonly path: string }[];
  /** Which releases serve which version, for the 404 message. */
  readonly servedBy?: string;
}

/** The versions of a resource the informer may use: the spec's own first, then its other versions. */
export function versionsOf(spec: InformerSpec): readonly { readonly apiVersion: string; readonly path: string }[] {
  return [{ apiVersion: spec.apiVersion, path: spec.path }, ...(spec.otherVersions ?? [])];
}

/**
 * The API server answered 404 for the version in use and serves another one: the informer restarts at once with it
 * (its list and its watch).
 */
export class ServedAs extends Error {
  readonly apiVersion: string;
  constructor(kind: ObjectKind, apiVersion: string) {
    super(`this API server serves ${kind}s as ${apiVersion}: listing and watching those`);
    this.name = 'ServedAs';
    this.apiVersion = apiVersion;
  }
}

/** Why an optional resource cannot be had (404, 403), or null when that is not the failure. */
export function optionalUnavailable(spec: InformerSpec, err: unknown): string | null {
  if (spec.optional === undefined) return null;
  const status = statusOf(err);
  const resource = `${spec.path.split('/').pop()}.${spec.apiVersion.split('/')[0]}`;
  const versions = versionsOf(spec).map((v) => v.apiVersion);
  if (status === 404)
    return `this API server does not serve ${versions.length > 1 ? `${spec.kind}s as ${versions.join(' or ')}` : `${spec.apiVersion} ${spec.kind}s`} (HTTP 404${spec.servedBy ? `; ${spec.servedBy}` : ''})`;
  if (status === 403) return `the role does not grant list and watch on ${resource} (HTTP 403; see the ClusterRole in manifests/kube-proxy-ts.yaml)`;
  return null;
}

export function informerSpecs(nodeName: string, o: { readonly serviceCIDRs?: boolean } = {}): readonly InformerSpec[] {
  const specs: InformerSpec[] = [
    {
      kind: 'Service',
      apiVersion: 'v1',
      path: '/api/v1/services',
      labelSelector: SERVICE_LABEL_SELECTOR,
      accept: (svc) => (svc['spec'] as { clusterIP?: unknown } | undefined)?.clusterIP !== 'None',
    },
    {
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: ENDPOINTSLICE_LABEL_SELECTOR,
    },
    {
      kind: 'Node',
      apiVersion: 'v1',
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${nodeName}`,
      accept: (node) => (node['metadata'] as { name?: unknown }).name === nodeName,
    },
  ];
  if (o.serviceCIDRs)
    specs.push({
      kind: 'ServiceCIDR',
      apiVersion: 'networking.k8s.io/v1',
      path: '/apis/networking.k8s.io/v1/servicecidrs',
      // Upstream lists them through the same informer factory as Services, with the same label selector.
      labelSelector: SERVICE_LABEL_SELECTOR,
      optional: 'traffic to unallocated ClusterIPs is not dropped',
      // Kubernetes 1.31 and 1.32 serve them as v1beta1 only (with MultiCIDRServiceAllocator on), and upstream's
      // kube-proxy of those releases watches that version.
      otherVersions: [{ apiVersion: 'networking.k8s.io/v1beta1', path: '/apis/networking.k8s.io/v1beta1/servicecidrs' }],
      servedBy: 'v1 from Kubernetes 1.33, v1beta1 in 1.31-1.32 with MultiCIDRServiceAllocator on',
    });
  return specs;
}

export interface ApiSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Back-off after a failure the API server did not answer, or a Retry-After (default API_BACKOFF: 0.8 s doubling to 3 s, 20 % jitter). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Back-off after a failure the API server answered (default API_ANSWERED_BACKOFF: client-go's reflector, 0.8 s doubling to 30 s, 100 % jitter). */
  readonly answeredBackoff?: Partial<BackoffOptions>;
  /** Restart an informer with no connect or event for this long (default 5 min). */
  readonly staleAfterMs?: number;
  /** Abort a list whose request (one page) has not been answered after this long (default 60 s, the API server's --request-timeout). */
  readonly listTimeoutMs?: number;
  /** Maps ListWatch's own delay between consecutive clean watch ends (1 s doubling to 30 s) to the delay used (default: capped at API_BACKOFF.maxMs; tests shorten it). */
  readonly reconnectDelayMs?: (libraryDelayMs: number) => number;
  /** A watch that ends sooner than this, nothing received, is an error and the informer lists again (default VERY_SHORT_WATCH_MS, client-go's 1 s; tests shorten it). */
  readonly veryShortWatchMs?: number;
  /** Objects per list page (default 500, as client-go). */
  readonly listPageSize?: number;
  /** Every request sent (rest_client metrics). */
  readonly observe?: RequestObserver;
  /** Watch ServiceCIDRs too (the nftables mode, when MultiCIDRServiceAllocator is on). */
  readonly serviceCIDRs?: boolean;
  /** How often an optional resource that cannot be had is asked for again (default OPTIONAL_RETRY_MS; tests shorten it). */
  readonly optionalRetryMs?: number;
}

interface RunContext {
  readonly spec: InformerSpec;
  /** versionsOf(spec). */
  readonly versions: readonly { readonly apiVersion: string; readonly path: string }[];
  /** The version in use (an index into `versions`), kept across the informer's restarts, and whether its current run has listed it. */
  readonly served: { index: number; listed: boolean };
  /** The resourceVersion the informer last saw and how the server lists, kept across restarts (kube-list.ts listSynced). */
  readonly listState: ListState;
  readonly kc: KubeConfig;
  readonly tracker: ObjectTracker;
  readonly handlers: Required<SourceHandlers>;
  readonly clock: Clock;
  readonly listTimeoutMs: number;
  readonly reconnectDelayMs: (ms: number) => number;
  readonly veryShortWatchMs?: number;
  readonly listPageSize?: number;
  readonly observe?: RequestObserver;
  /** A list succeeded or a watch was answered with its stream: the API server answers. */
  readonly answered: () => void;
}

/** One informer instance: a fresh ListWatch (its cache starts empty; our tracker reconciles each list). */
async function startInformer(c: RunContext, control: RunControl): Promise<Run> {
  const { spec, tracker, handlers } = c;
  let closed = false;
  const problem = (message: string, err?: unknown): void => {
    if (!closed) handlers.onProblem(spec.kind, `${spec.kind} informer: ${message}`, err);
  };
  const watch = new GuardedWatch(c.kc, {
    onActivity: () => control.activity(),
    onDead: (err) => control.failed(err),
    onProblem: problem,
    onResourceVersion: (rv) => {
      if (!closed) c.listState.resourceVersion = rv;
    },
    retain: (obj) => retainedFields(spec.kind, obj),
    // A watch refused or turned away (429, a 5xx with Retry-After) is asked again from its resourceVersion after the
    // back-off, not listed again (client-go Reflector.watch): the API server back, every node's informers go on
    // watching where they were, instead of each listing every Service and EndpointSlice again.
    backOff: (err) => control.backOff(err),
    onWatching: () => c.answered(),
    ...(c.veryShortWatchMs !== undefined ? { veryShortMs: c.veryShortWatchMs } : {}),
    ...(c.observe ? { observe: c.observe } : {}),
  });
  const query = { labelSelector: spec.labelSelector, fieldSelector: spec.fieldSelector };
  const { versions, served } = c;
  const path = versions[served.index]!.path;
  served.listed = false;
  const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
    // The timeout bounds each request of the list (each page), not the whole list: client-go's pager has no deadline
    // for the list, the API server bounds each request (--request-timeout), and a large cluster's list from a loaded
    // API server takes as long as its pages do. A whole-list deadline failed such a list every time it was retried.
    const timeout = new AbortController();
    let timer: unknown = null;
    const arm = (): void => {
      if (timer !== null) c.clock.clearTimeout(timer);
      const timedOut = Object.assign(new Error(`list timed out after ${c.listTimeoutMs} ms`), { code: 'ETIMEDOUT' });
      timer = c.clock.setTimeout(() => timeout.abort(timedOut), c.listTimeoutMs);
    };
    arm();
    const signal = AbortSignal.any([control.signal, timeout.signal]);
    const observe: RequestObserver = (r) => {
      // A page is progress: the watchdog (no connect or event for staleAfterMs) leaves a list whose pages keep coming.
      control.activity();
      arm();
      c.observe?.(r);
    };
    const listOptions = {
      ...(c.listPageSize !== undefined ? { pageSize: c.listPageSize } : {}),
      observe,
      // Only the fields the agent reads are kept, page by page, by ListWatch's cache and by the tracker (retained-fields.ts).
      keep: (o: unknown) => (isWellFormed(o) ? retainedFields(spec.kind, o as Record<string, unknown>) : null),
    };
    // Whether another version is served: asked of the watch cache (resourceVersion 0).
    const lists = (at: string): Promise<boolean> =>
      listRaw(c.kc, at, { ...query, resourceVersion: '0' }, signal, listOptions).then(
        () => true,
        () => false,
      );
    try {
      const list = await listSynced(c.kc, path, query, signal, c.listState, listOptions).catch(async (err: unknown) => {
        // Not served in this version: the first other version the server lists is used from the restart on.
        if (statusOf(err) === 404)
          for (const [index, other] of versions.entries()) {
            if (index === served.index || !(await lists(other.path))) continue;
            served.index = index;
            throw new ServedAs(spec.kind, other.apiVersion);
          }
        // Nothing waits for what cannot be had: it counts as listed, with what the tracker knew before.
        if (!closed && optionalUnavailable(spec, err) !== null) handlers.onSynced(spec.kind);
        throw err;
      });
      if (closed) throw new Error('informer stopped');
      served.listed = true;
      c.answered();
      const items = list.items.filter((o) => o !== null);
      if (items.length !== list.items.length) problem(`dropped ${list.items.length - items.length} listed objects without metadata.name`);
      tracker.reconcile(items);
      handlers.onSynced(spec.kind);
      return { metadata: list.metadata, items: items as KubernetesObject[] };
    } finally {
      if (timer !== null) c.clock.clearTimeout(timer);
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
  const lw = new ListWatch<KubernetesObject>(path, watch, listFn, false, spec.labelSelector, spec.fieldSelector, { delayFn });
  const live = (fn: (obj: KubernetesObject) => void) => (obj: KubernetesObject) => {
    if (!closed) fn(obj);
  };
  lw.on(
    'add',
    live((obj) => tracker.upsert(obj)),
  );
  lw.on(
    'update',
    live((obj) => tracker.upsert(obj)),
  );
  lw.on(
    'delete',
    live((obj) => tracker.remove(obj)),
  );
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
  const specs = informerSpecs(options.nodeName, { serviceCIDRs: options.serviceCIDRs === true });
  const kc = options.kubeConfig;
  const cap = options.backoff?.maxMs ?? API_BACKOFF.maxMs!;
  let supervisors: Supervisor[] | null = null;
  return {
    async start(h: SourceHandlers): Promise<void> {
      if (supervisors) throw new Error('api source already started');
      const handlers = guard(h, log);
      const repeated = repeatFilter(clock);
      const all: Supervisor[] = [];
      // Informers whose last failure the API server did not answer: the ones a successful list elsewhere proves recoverable.
      const unreachable = new Set<Supervisor>();
      supervisors = all;
      for (const spec of specs) {
        // One tracker per kind for the life of this start(): informer restarts reconcile against it.
        const versions = versionsOf(spec);
        const served = { index: 0, listed: false };
        const listState = newListState();
        const tracker = new ObjectTracker({
          kind: spec.kind,
          apiVersion: versions.length > 1 ? () => versions[served.index]!.apiVersion : spec.apiVersion,
          // listFn and the watch's retain hook hand it retained copies (startInformer).
          retained: true,
          ...(spec.accept ? { accept: spec.accept } : {}),
          emit: (ev) => handlers.onEvent(ev),
        });
        let self: Supervisor | null = null;
        const ctx: RunContext = {
          spec,
          versions,
          served,
          listState,
          kc,
          tracker,
          handlers,
          clock,
          listTimeoutMs: options.listTimeoutMs ?? 60_000,
          reconnectDelayMs: options.reconnectDelayMs ?? cappedDelay(cap),
          ...(options.veryShortWatchMs !== undefined ? { veryShortWatchMs: options.veryShortWatchMs } : {}),
          ...(options.listPageSize !== undefined ? { listPageSize: options.listPageSize } : {}),
          ...(options.observe ? { observe: options.observe } : {}),
          // The API server answers: informers that could not reach it and still wait for their back-off go now.
          answered: () => {
            unreachable.delete(self!);
            for (const other of [...unreachable]) {
              unreachable.delete(other);
              if (other.retryNow())
                log.debug({ kind: spec.kind }, 'the API server answers again: restarting the informers that could not reach it now');
            }
          },
        };
        self = new Supervisor({
          name: `${spec.kind} informer`,
          start: (control) => startInformer(ctx, control),
          clock,
          backoff: { ...API_BACKOFF, ...options.backoff },
          // What the API server answered costs it work each time: client-go's reflector's back-off (file comment). A
          // Retry-After it named is its own pace (below), on the short back-off.
          answered: (err) => serverAnswered(err) && retryAfterMs(err) === null,
          answeredBackoff: { ...API_ANSWERED_BACKOFF, ...options.answeredBackoff },
          ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
          retryAtOnce: (err) => statusOf(err) === 401,
          // client-go waits as long as a 429 or 5xx's Retry-After says before it tries again (checkWait).
          waitAtLeast: retryAfterMs,
          // A resource listed in this run and then not served (its watch answered 404: the server was upgraded to a
          // release without that version) is asked for again with the ordinary backoff, not after the long delay.
          delayFor: (err) =>
            err instanceof ServedAs
              ? 0
              : optionalUnavailable(spec, err) !== null && !served.listed
                ? (options.optionalRetryMs ?? OPTIONAL_RETRY_MS)
                : null,
          onRestart: (err, delayMs, how) => {
            if (err instanceof ServedAs) {
              log.info({ kind: spec.kind, apiVersion: err.apiVersion }, `${spec.kind} informer: ${err.message}`);
              return;
            }
            if (!serverAnswered(err)) unreachable.add(self!);
            else unreachable.delete(self!);
            const why = optionalUnavailable(spec, err);
            if (why !== null) {
              const again = delayMs >= 1000 ? `${Math.round(delayMs / 1000)} s` : `${delayMs} ms`;
              const gone = served.listed && statusOf(err) === 404;
              const message = gone
                ? `this API server no longer serves ${spec.kind}s as ${versions[served.index]!.apiVersion} (HTTP 404); keeping what was listed, listing again in ${again}`
                : `${why}; ${spec.optional}; asking again in ${again}`;
              handlers.onProblem(spec.kind, `${spec.kind} informer: ${message}`, err);
              return;
            }
            const what = describeError(err, kc);
            const r = repeated(spec.kind, what);
            if (!r.report) return;
            const retry = how === 'retry' ? `watching again in ${delayMs} ms` : delayMs === 0 ? 'retrying at once' : `restarting in ${delayMs} ms`;
            const held = r.held ? ` (${r.held} more times in the last ${REPEAT_REPORT_MS / 1000} s)` : '';
            handlers.onProblem(spec.kind, `${spec.kind} informer failed: ${what}; ${retry}${held}`, err);
          },
        });
        all.push(self);
      }
      log.info(
        {
          nodeName: options.nodeName,
          server: kc.getCurrentCluster()?.server,
          selectors: specs.map((s) => ({ kind: s.kind, label: s.labelSelector, field: s.fieldSelector })),
        },
        'starting informers',
      );
      await Promise.all(all.map((s) => s.start()));
    },
    async stop(): Promise<void> {
      const running = supervisors ?? [];
      supervisors = null;
      await Promise.all(running.map((s) => s.stop()));
    },
  };
}
