/**
 * API access as upstream kube-proxy finds it: --kubeconfig (with --master
 * overriding its server), else --master alone, else the in-cluster service
 * account, else the default loading rules ($KUBECONFIG, ~/.kube/config).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(opts: { kubeconfig: string; master: string }): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (!opts.master && existsSync(SA_TOKEN) && process.env['KUBERNETES_SERVICE_HOST']) kc.loadFromCluster();
  else if (opts.master) {
    kc.loadFromClusterAndUser({ name: 'master', server: opts.master, skipTLSVerify: opts.master.startsWith('http://') }, { name: 'user' });
    return kc;
  } else kc.loadFromDefault();
  if (opts.master) {
    const cluster = kc.getCurrentCluster();
    if (cluster) kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: opts.master } : c));
  }
  return kc;
}
