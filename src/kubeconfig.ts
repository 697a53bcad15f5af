/**
 * API access as upstream kube-proxy finds it: --kubeconfig (with --master
 * overriding its server), else --master alone, else the in-cluster service
 * account, else the default loading rules ($KUBECONFIG, ~/.kube/config).
 * Tokens read from files (kubeadm's tokenFile, the in-cluster service-account
 * token) follow rotation at once (see kubeconfig-token.ts).
 */
import { KubeConfig, type User } from '@kubernetes/client-node';
import { tokenFileUser, useTokenFileAuth } from './kubeconfig-token.ts';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { load } from 'js-yaml';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(opts: { kubeconfig: string; master: string }): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) {
    kc.loadFromFile(opts.kubeconfig);
    withTokenFiles(kc, opts.kubeconfig);
  } else if (!opts.master && existsSync(SA_TOKEN) && process.env['KUBERNETES_SERVICE_HOST']) kc.loadFromCluster();
  else if (opts.master) {
    kc.loadFromClusterAndUser({ name: 'master', server: opts.master, skipTLSVerify: opts.master.startsWith('http://') }, { name: 'user' });
    return kc;
  } else kc.loadFromDefault();
  useTokenFileAuth(kc);
  if (opts.master) {
    const cluster = kc.getCurrentCluster();
    if (cluster) kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: opts.master } : c));
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
