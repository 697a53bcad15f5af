/**
 * Kubernetes Events (events.k8s.io/v1), as upstream kube-proxy records them:
 * "Starting" on its Node when it starts, "FailedToStartServiceHealthcheck"
 * on a Service whose health-check node port cannot be opened. Recording is
 * fire-and-forget: a failure is logged at debug level and never affects the
 * proxy. Without an API server (--objects) events are only logged.
 */
import { EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../proxier/log.ts';
import { serverHost, statusOf, type RequestObserver } from './sources/kube-client.ts';

export interface ObjectRef {
  readonly kind: 'Node' | 'Service';
  readonly apiVersion: 'v1';
  readonly name: string;
  /** Empty for cluster-scoped objects (their events go to "default", as client-go's recorder does). */
  readonly namespace: string;
  readonly uid?: string;
}

export interface EventSpec {
  readonly regarding: ObjectRef;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

export interface EventRecorder {
  record(event: EventSpec): void;
  /** Resolves when every event recorded so far was sent (or failed). */
  flush(): Promise<void>;
}

/** The body of an events.k8s.io/v1 Event (pure). */
export function eventBody(e: EventSpec, o: { nodeName: string; now: Date }) {
  const namespace = e.regarding.namespace || 'default';
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${e.regarding.name}.${(o.now.getTime() * 1e6).toString(16)}`, namespace },
    eventTime: o.now,
    reportingController: 'kube-proxy',
    reportingInstance: `kube-proxy-${o.nodeName}`,
    action: e.action,
    reason: e.reason,
    regarding: {
      kind: e.regarding.kind,
      apiVersion: e.regarding.apiVersion,
      name: e.regarding.name,
      ...(e.regarding.namespace ? { namespace: e.regarding.namespace } : {}),
      ...(e.regarding.uid ? { uid: e.regarding.uid } : {}),
    },
    note: e.note,
    type: e.type,
  };
}

function logFields(e: EventSpec): Record<string, string> {
  const r = e.regarding;
  return { event: e.reason, regarding: `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`, note: e.note };
}

export function apiEventRecorder(
  kc: KubeConfig,
  o: { nodeName: string; logger: Logger; now?: () => Date; observe?: RequestObserver },
): EventRecorder {
  const api = kc.makeApiClient(EventsV1Api);
  const pending = new Set<Promise<void>>();
  const host = serverHost(kc.getCurrentCluster()?.server ?? '');
  return {
    record(e) {
      const body = eventBody(e, { nodeName: o.nodeName, now: (o.now ?? (() => new Date()))() });
      o.logger.info(logFields(e), 'recording event');
      const t0 = performance.now();
      const observe = (code: string): void => o.observe?.({ method: 'POST', host, code, seconds: (performance.now() - t0) / 1000 });
      const p = api
        .createNamespacedEventWithHttpInfo({ namespace: body.metadata.namespace, body: body as never })
        .then((r) => observe(String(r.httpStatusCode)))
        .catch((err: unknown) => {
          observe(String(statusOf(err) ?? '<error>'));
          o.logger.debug({ err: (err as Error).message, event: e.reason }, 'cannot record event');
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    },
    async flush() {
      await Promise.all([...pending]);
    },
  };
}

export function logEventRecorder(logger: Logger): EventRecorder {
  return {
    record(e) {
      logger.info(logFields(e), 'event (not recorded: no API server)');
    },
    async flush() {},
  };
}
