/**
 * API access as upstream kube-proxy finds it: --kubeconfig (with --master
 * overriding its server), else --master alone, else the in-cluster service
 * account, else an error (NoApiAccessError). The tools (diff, trace, top) also
 * take the default loading rules ($KUBECONFIG, ~/.kube/config), as kubectl
 * does; the agent does not, as upstream's createClient does not.
 * Tokens read from files (kubeadm's tokenFile, the in-cluster service-account
 * token) follow rotation at once (see kubeconfig-token.ts).
 */
import { KubeConfig, type User } from '@kubernetes/client-node';
import { tokenFileUser, useTokenFileAuth } from './kubeconfig-token.ts';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { load } from 'js-yaml';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Nothing says where the API server is. */
export class NoApiAccessError extends Error {
  override readonly name = 'NoApiAccessError';
  /** `agent`: the agent's wording, which names upstream's error and says why $KUBECONFIG is not read. */
  constructor(agent: boolean) {
    super(
      agent
        ? 'no API server to talk to: neither --kubeconfig nor --master is given, and this is not a pod (unable to load in-cluster configuration: KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and the service-account token); as upstream, the agent does not read $KUBECONFIG or ~/.kube/config: give --kubeconfig; --objects FILE runs without an API server'
        : 'no API server to talk to: neither --kubeconfig nor --master is given, this is not a pod (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and the service-account token), and there is no $KUBECONFIG or ~/.kube/config; --objects FILE runs without an API server',
    );
  }
}

/**
 * `defaultRules` (default true, the tools): with neither --kubeconfig nor --master outside a pod, $KUBECONFIG or
 * ~/.kube/config as kubectl reads them. The agent passes false (loadApiAccess).
 */
export function loadKubeConfig(opts: { kubeconfig: string; master: string; defaultRules?: boolean }): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) {
    kc.loadFromFile(opts.kubeconfig);
    withTokenFiles(kc, opts.kubeconfig);
  } else if (!opts.master && existsSync(SA_TOKEN) && process.env['KUBERNETES_SERVICE_HOST']) kc.loadFromCluster();
  else if (opts.master) {
    kc.loadFromClusterAndUser({ name: 'master', server: opts.master, skipTLSVerify: opts.master.startsWith('http://') }, { name: 'user' });
    return kc;
  } else {
    // client-node would fall back to http://localhost:8080 and retry it forever; upstream exits ("unable to load
    // in-cluster configuration"). A node's root often has an admin's ~/.kube/config: the agent must not run with it.
    if (opts.defaultRules === false) throw new NoApiAccessError(true);
    if (!process.env['KUBECONFIG'] && !existsSync(join(homedir(), '.kube', 'config'))) throw new NoApiAccessError(false);
    kc.loadFromDefault();
  }
  useTokenFileAuth(kc);
  if (opts.master) {
    const cluster = kc.getCurrentCluster();
    if (cluster) kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: opts.master } : c));
  }
  return kc;
}

/**
 * The agent's API access, loaded at start, before it touches the node (upstream's newProxyServer creates its client
 * first): a kubeconfig that cannot be read or parsed, or that names no cluster to talk to, is an error naming the file
 * and what is wrong, and the agent exits 1 instead of retrying what no retry fixes. (A CA or token file it names is
 * read at each request: one that is missing yet is waited for.)
 */
export function loadApiAccess(opts: { kubeconfig: string; master: string }): KubeConfig {
  const where = opts.kubeconfig ? `the kubeconfig ${opts.kubeconfig}` : 'the kubeconfig';
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig({ ...opts, defaultRules: false });
  } catch (err) {
    if (err instanceof NoApiAccessError) throw err;
    throw new Error(`cannot load ${where}: ${(err as Error).message}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    const name = kc.getCurrentContext();
    const context = name ? kc.getContextObject(name) : null;
    const why = !name
      ? 'it sets no current-context'
      : !context
        ? `its current-context "${name}" is not one of its contexts (${kc.contexts.map((c) => `"${c.name}"`).join(', ') || 'none'})`
        : `context "${name}" names cluster "${context.cluster}", which is not one of its clusters`;
    throw new Error(`${where} names no cluster to talk to: ${why}`);
  }
  return kc;
}

/**
 * client-node reads `token` and `token-file` but drops the Go client's
 * `tokenFile` field, which kubeadm's kube-proxy kubeconfig uses (pointing at
 * the service-account token): such a user would talk to the API server as
 * nobody. Map it onto the token-file provider (loadKubeConfig registers it).
 */
export function withTokenFiles(kc: KubeConfig, path: string): void {
  let raw: unknown;
  try {
    raw = load(readFileSync(path, 'utf8'));
  } catch {
    return;
  }
  const users = (raw as { users?: { name?: unknown; user?: { tokenFile?: unknown } }[] } | null)?.users ?? [];
  const files = new Map<string, string>();
  for (const u of users) {
    if (typeof u?.name === 'string' && typeof u.user?.tokenFile === 'string' && u.user.tokenFile)
      files.set(u.name, resolve(dirname(path), u.user.tokenFile));
  }
  if (!files.size) return;
  kc.users = kc.users.map((u): User => {
    const file = files.get(u.name);
    if (!file || u.token || u.authProvider || u.exec) return u;
    return tokenFileUser(u, file);
  });
}
