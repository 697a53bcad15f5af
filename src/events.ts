/**
 * Kubernetes Events (events.k8s.io/v1), as upstream kube-proxy records them:
 * "Starting" on its Node when it starts, "FailedToStartServiceHealthcheck"
 * on a Service whose health-check node port cannot be opened. Recording is
 * fire-and-forget: a failure is logged at debug level and never affects the
 * proxy. Without an API server (--objects) events are only logged.
 *
 * Posted as JSON by kubeRequest, not through client-node's EventsV1Api: its serializer writes eventTime (a
 * MicroTime) as JavaScript writes a Date, with milliseconds, and the API server parses a MicroTime with the
 * fixed-width layout RFC3339Micro (exactly six fractional digits), so it refuses every such Event with a 400
 * (kubernetes/kubernetes#141204, open).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../proxier/log.ts';
import type { RequestObserver } from './sources/kube-client.ts';
import { apiUrl } from './sources/kube-http.ts';
import { failureMessage, kubeRequest } from './sources/kube-request.ts';

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

/** A time as metav1.MicroTime writes it (MarshalJSON: UTC, RFC3339Micro "2006-01-02T15:04:05.000000Z07:00"); a Date has milliseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

/** The body of an events.k8s.io/v1 Event (pure). */
export function eventBody(e: EventSpec, o: { nodeName: string; now: Date }) {
  const namespace = e.regarding.namespace || 'default';
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${e.regarding.name}.${(o.now.getTime() * 1e6).toString(16)}`, namespace },
    eventTime: microTime(o.now),
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
    note: eventNote(e.note),
    type: e.type,
  };
}

/** The API server refuses a note longer than 1024 bytes (events.k8s.io/v1 validation, NoteLengthLimit): cut, marked. */
export function eventNote(note: string): string {
  const bytes = Buffer.from(note);
  if (bytes.length <= 1024) return note;
  // Cut on a character boundary (a cut UTF-8 sequence decodes to U+FFFD, 3 bytes): drop those.
  return `${bytes
    .subarray(0, 1021)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')}...`;
}

function logFields(e: EventSpec): Record<string, string> {
  const r = e.regarding;
  return { event: e.reason, regarding: `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`, note: e.note };
}

export function apiEventRecorder(
  kc: KubeConfig,
  o: { nodeName: string; logger: Logger; now?: () => Date; observe?: RequestObserver },
): EventRecorder {
  const pending = new Set<Promise<void>>();
  const server = kc.getCurrentCluster()?.server ?? '';
  return {
    record(e) {
      const body = eventBody(e, { nodeName: o.nodeName, now: (o.now ?? (() => new Date()))() });
      o.logger.info(logFields(e), 'recording event');
      const path = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(body.metadata.namespace)}/events`;
      const p = Promise.resolve()
        .then(() => kubeRequest(kc, { method: 'POST', url: apiUrl(server, path), body, observe: o.observe }))
        .then((r) => {
          if (r.status < 200 || r.status > 299) throw new Error(`HTTP ${r.status}: ${failureMessage(r.text).message}`);
        })
        .catch((err: unknown) => o.logger.debug({ err: (err as Error).message, event: e.reason }, 'cannot record event'))
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
