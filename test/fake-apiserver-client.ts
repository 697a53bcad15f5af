/**
 * Clients of the fake API server: a client-node KubeConfig trusting its CA
 * with a bearer token (what the code under test uses), and a small fetch over
 * node:https for the tests of the wire format (Node's global fetch cannot be
 * given a CA).
 */
import { request } from 'node:https';
import { Readable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { defaultTestPki, type TestPki } from './fake-apiserver-tls.ts';

/** The token kubeConfigFor() authenticates with and a server accepts by default. */
export const FAKE_TOKEN = 'fake-token';

/** GET (or `method`) `url` trusting `ca`, with a bearer token unless null (and a client certificate if given); the response as a web Response. */
export function httpsFetch(
  url: string,
  o: { ca: string; token: string | null; method?: string; body?: string; cert?: string; key?: string },
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const tls = o.cert && o.key ? { cert: o.cert, key: o.key } : {};
    const req = request(
      url,
      { method: o.method ?? 'GET', ca: o.ca, ...tls, headers: o.token ? { Authorization: `Bearer ${o.token}` } : {} },
      (res) => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve(new Response(Readable.toWeb(res) as ReadableStream, { status: res.statusCode ?? 0, headers }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * A client-node KubeConfig for the fake: its URL, its CA and a bearer token.
 * A plain http URL (a server that does not exist, for failure tests) gets
 * skipTLSVerify, which client-node requires for http.
 */
export function kubeConfigFor(server: { readonly url: string; readonly pki?: TestPki }, token = FAKE_TOKEN): KubeConfig {
  const kc = new KubeConfig();
  const tls = server.url.startsWith('https:')
    ? { caData: Buffer.from((server.pki ?? defaultTestPki()).caPem).toString('base64'), skipTLSVerify: false }
    : { skipTLSVerify: true };
  kc.loadFromClusterAndUser({ name: 'fake', server: server.url, ...tls }, { name: 'fake-user', token });
  return kc;
}

/**
 * A kubeconfig as k3s writes kube-proxy's (`agent/kubeproxy.kubeconfig`, pkg/daemons/agent: cluster "local", context
 * "Default", user "user"), with `server` and the given cluster and user fields (`certificate-authority: ...`,
 * `client-certificate: ...`, or their `-data` forms).
 */
export function k3sKubeconfig(server: string, cluster: readonly string[], user: readonly string[]): string {
  return [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    server: ${server}`,
    ...cluster.map((l) => `    ${l}`),
    '  name: local',
    'contexts:',
    '- context:',
    '    cluster: local',
    '    namespace: default',
    '    user: user',
    '  name: Default',
    'current-context: Default',
    'kind: Config',
    'preferences: {}',
    'users:',
    '- name: user',
    '  user:',
    ...user.map((l) => `    ${l}`),
    '',
  ].join('\n');
}
