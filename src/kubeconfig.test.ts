/**
 * API access from a kubeconfig as kubeadm writes it for kube-proxy: the user
 * authenticates with `tokenFile` (the service-account token), a field
 * client-node does not read by itself.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadApiAccess, loadKubeConfig } from './kubeconfig.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-kubeconfig-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const kubeconfig = (user: string) => `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://192.0.2.1:6443
    insecure-skip-tls-verify: true
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
${user}
`;

async function authorization(path: string, master = ''): Promise<string | undefined> {
  const kc = loadKubeConfig({ kubeconfig: path, master });
  const opts: { headers?: Record<string, string> } = { headers: {} };
  await kc.applyToHTTPSOptions(opts as never);
  return opts.headers?.['Authorization'] ?? opts.headers?.['authorization'];
}

describe('loadKubeConfig', () => {
  it("authenticates with kubeadm's tokenFile (a path relative to the kubeconfig's directory)", async () => {
    await writeFile(join(dir, 'token'), 'first-token');
    await writeFile(join(dir, 'kubeconfig.conf'), kubeconfig('    tokenFile: token'));
    expect(await authorization(join(dir, 'kubeconfig.conf'))).toBe('Bearer first-token');
  });

  it('keeps an inline token as it is', async () => {
    await writeFile(join(dir, 'kubeconfig.conf'), kubeconfig('    token: inline'));
    expect(await authorization(join(dir, 'kubeconfig.conf'))).toBe('Bearer inline');
  });

  it('--master replaces the server of the current cluster', async () => {
    await writeFile(join(dir, 'kubeconfig.conf'), kubeconfig('    token: inline'));
    const kc = loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig.conf'), master: 'https://198.51.100.7:6443' });
    expect(kc.getCurrentCluster()?.server).toBe('https://198.51.100.7:6443');
  });
});

describe('loadApiAccess (upstream newProxyServer: the client before anything else)', () => {
  const file = () => join(dir, 'kubeconfig.conf');
  const refused = async (text: string | null) => {
    if (text !== null) await writeFile(file(), text);
    try {
      loadApiAccess({ kubeconfig: file(), master: '' });
      return 'loaded';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('loads a kubeconfig that names a cluster with a server', async () => {
    expect(await refused(kubeconfig('    token: inline'))).toBe('loaded');
  });

  it('names the file and what is wrong: missing, not YAML, no current-context, a context or cluster it does not hold, no server', async () => {
    expect(await refused(null)).toBe(`cannot load the kubeconfig ${file()}: ENOENT: no such file or directory, open '${file()}'`);
    expect(await refused('apiVersion: v1\nkind: Config\nclusters: [\n')).toMatch(new RegExp(`^cannot load the kubeconfig ${file()}: .*\\(4:1\\)`));
    const base = kubeconfig('    token: inline');
    expect(await refused(base.replace('current-context: default\n', ''))).toBe(
      `the kubeconfig ${file()} names no cluster to talk to: it sets no current-context`,
    );
    expect(await refused(base.replace('current-context: default', 'current-context: prod'))).toBe(
      `the kubeconfig ${file()} names no cluster to talk to: its current-context "prod" is not one of its contexts ("default")`,
    );
    expect(await refused(base.replace('    cluster: default', '    cluster: gone'))).toBe(
      `the kubeconfig ${file()} names no cluster to talk to: context "default" names cluster "gone", which is not one of its clusters`,
    );
    expect(await refused(base.replace('    server: https://192.0.2.1:6443\n', ''))).toBe(
      `cannot load the kubeconfig ${file()}: clusters[0].cluster.server is missing`,
    );
  });

  it('with nothing that says where the API server is: an error saying so (upstream exits; client-node would try http://localhost:8080 forever)', () => {
    const saved = { HOME: process.env['HOME'], KUBECONFIG: process.env['KUBECONFIG'], HOST: process.env['KUBERNETES_SERVICE_HOST'] };
    try {
      process.env['HOME'] = dir; // no .kube/config in it
      delete process.env['KUBECONFIG'];
      delete process.env['KUBERNETES_SERVICE_HOST'];
      expect(() => loadApiAccess({ kubeconfig: '', master: '' })).toThrow(
        /^no API server to talk to: neither --kubeconfig nor --master is given, .*--objects FILE runs without an API server$/,
      );
      expect(() => loadApiAccess({ kubeconfig: '', master: 'https://192.0.2.1:6443' })).not.toThrow();
      expect(() => loadKubeConfig({ kubeconfig: '', master: '' })).toThrow(/and there is no \$KUBECONFIG or ~\/\.kube\/config/);
    } finally {
      for (const [k, v] of Object.entries({ HOME: saved.HOME, KUBECONFIG: saved.KUBECONFIG, KUBERNETES_SERVICE_HOST: saved.HOST }))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("the agent does not read $KUBECONFIG or ~/.kube/config outside a pod, as upstream's createClient; the tools do, as kubectl", async () => {
    const saved = { HOME: process.env['HOME'], KUBECONFIG: process.env['KUBECONFIG'], HOST: process.env['KUBERNETES_SERVICE_HOST'] };
    try {
      // A node's root with an admin's kubeconfig, in both places.
      await mkdir(join(dir, '.kube'));
      const admin =
        'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "https://192.0.2.1:6443"}\ncontexts:\n- name: admin@c\n  context: {cluster: c, user: admin}\ncurrent-context: admin@c\nusers:\n- name: admin\n  user: {token: admin-token}\n';
      await writeFile(join(dir, '.kube', 'config'), admin);
      process.env['HOME'] = dir;
      process.env['KUBECONFIG'] = join(dir, '.kube', 'config');
      delete process.env['KUBERNETES_SERVICE_HOST'];
      expect(() => loadApiAccess({ kubeconfig: '', master: '' })).toThrow(
        /^no API server to talk to: neither --kubeconfig nor --master is given, and this is not a pod \(unable to load in-cluster configuration: .*\); as upstream, the agent does not read \$KUBECONFIG or ~\/\.kube\/config: give --kubeconfig; --objects FILE runs without an API server$/,
      );
      delete process.env['KUBECONFIG'];
      expect(() => loadApiAccess({ kubeconfig: '', master: '' })).toThrow(/the agent does not read/);
      expect(loadKubeConfig({ kubeconfig: '', master: '' }).getCurrentCluster()?.server).toBe('https://192.0.2.1:6443');
      // Named with --kubeconfig, the same file is the agent's.
      expect(loadApiAccess({ kubeconfig: join(dir, '.kube', 'config'), master: '' }).getCurrentUser()?.name).toBe('admin');
    } finally {
      for (const [k, v] of Object.entries({ HOME: saved.HOME, KUBECONFIG: saved.KUBECONFIG, KUBERNETES_SERVICE_HOST: saved.HOST }))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });
});
