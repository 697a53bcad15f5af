/**
 * How the API source reports problems: describeError turns client-node's
 * errors into one sentence (HTTP status and Status message, a named TLS
 * problem, or the message with its cause); guard makes every call into the
 * source's handlers safe and sends problems to one place only (the handlers'
 * onProblem, or the log when there is none); repeatFilter holds back the same
 * informer failure repeating within REPEAT_REPORT_MS and counts it into the
 * next report, so an outage does not flood the log.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApiException, type KubeConfig, type User } from '@kubernetes/client-node';
import type { ObjectKind, SourceHandlers } from './events.ts';
import { statusOf, tlsProblem } from './kube-client.ts';
import type { Clock } from '../../proxier/clock.ts';
import type { Logger } from '../../proxier/log.ts';

/** A repeated identical informer failure is reported at most this often. */
export const REPEAT_REPORT_MS = 30_000;

/**
 * "HTTP 503: message" for API errors (ApiException.code, Watch's statusCode),
 * a sentence naming a TLS problem (with the kubeconfig, see tlsProblem), else
 * the message and its cause.
 */
export function describeError(err: unknown, kc?: KubeConfig): string {
  const tls = kc ? tlsProblem(err, kc) : null;
  if (tls) return tls;
  const unread = kc ? unreadableFile(err, kc) : null;
  if (unread) return unread;
  if (statusOf(err) === 401) return `HTTP 401 Unauthorized: ${refusedCredentials(kc?.getCurrentUser() ?? null)}`;
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | null | undefined;
    return `HTTP ${err.code}${typeof body?.message === 'string' ? `: ${body.message}` : ''}`;
  }
  const e = err as { statusCode?: unknown; message?: unknown; cause?: { message?: unknown } } | null;
  if (typeof e?.statusCode === 'number') return `HTTP ${e.statusCode}${typeof e.message === 'string' ? ` ${e.message}` : ''}`;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.cause?.message === 'string' ? `${message} (${e.cause.message})` : message;
}

/** A file the kubeconfig names that could not be read (a CA, a client certificate or key), said as such; else null. */
function unreadableFile(err: unknown, kc: KubeConfig): string | null {
  const { path, code } = (err ?? {}) as { path?: unknown; code?: unknown };
  if (typeof path !== 'string' || typeof code !== 'string') return null;
  const user = kc.getCurrentUser();
  const role =
    path === kc.getCurrentCluster()?.caFile
      ? 'certificate-authority'
      : path === user?.certFile
        ? 'client-certificate'
        : path === user?.keyFile
          ? 'client-key'
          : null;
  return role ? `cannot read the ${role} file ${path} the kubeconfig names (${code}); trying again` : null;
}

/**
 * Why the API server may have refused the user's credentials. For a client certificate (k3s, kops and the hard way
 * authenticate kube-proxy with one) the certificate is read as the request sent it and its dates are checked, since
 * an expired one is the usual cause and the API server's 401 does not say; otherwise its subject and issuer are named,
 * for comparison with the API server's client CA. Anything else: a bearer token, expired or rotated.
 */
export function refusedCredentials(user: User | null, now = Date.now()): string {
  if (!user?.certFile && !user?.certData) return 'the API server refused the credentials (token expired or rotated?)';
  const where = user.certFile ? `the client-certificate file ${user.certFile}` : `the client-certificate-data of user ${user.name}`;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(user.certFile ? readFileSync(user.certFile) : Buffer.from(user.certData!, 'base64'));
  } catch (err) {
    return `the API server refused the client certificate, and ${where} cannot be read as one: ${(err as Error).message}`;
  }
  const subject = cert.subject.replace(/\n/g, ', ');
  if (now > Date.parse(cert.validTo)) return `the client certificate (${subject}) in ${where} expired on ${cert.validTo}`;
  if (now < Date.parse(cert.validFrom)) return `the client certificate (${subject}) in ${where} is not valid before ${cert.validFrom}`;
  const issuer = cert.issuer.replace(/\n/g, ', ');
  return `the API server refused the client certificate (${subject}, issued by ${issuer}) in ${where}: not signed by a CA of its --client-ca-file?`;
}

/** Problems go to the handlers' onProblem, or to the log when there is none: logged once either way. */
export function guard(h: SourceHandlers, log: Logger): Required<SourceHandlers> {
  const onProblem = (kind: ObjectKind | null, message: string, err?: unknown): void => {
    if (!h.onProblem) {
      log.warn({ kind, err: err === undefined ? undefined : describeError(err) }, message);
      return;
    }
    try {
      h.onProblem(kind, message, err);
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

/** Reports a repeated identical failure at most every REPEAT_REPORT_MS (per informer), counting what it held back. */
export function repeatFilter(clock: Clock): (kind: ObjectKind, what: string) => { report: boolean; held: number } {
  const last = new Map<ObjectKind, { what: string; at: number; held: number }>();
  return (kind, what) => {
    const prev = last.get(kind);
    const now = clock.now();
    if (prev && prev.what === what && now - prev.at < REPEAT_REPORT_MS) {
      prev.held++;
      return { report: false, held: 0 };
    }
    last.set(kind, { what, at: now, held: 0 });
    return { report: true, held: prev && prev.what === what ? prev.held : 0 };
  };
}
