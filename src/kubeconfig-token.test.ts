/**
 * Token files as kubelet rotates them: the token a request carries follows
 * the atomic `..data` swap at once (client-node's own provider and client-go's
 * cached token source keep the old token up to 60 s), is trimmed, and a
 * missing file is an error naming it. The in-cluster configuration and
 * kubeadm's tokenFile both use it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceAccountVolume } from '../test/fake-apiserver-sa.ts';
import { TOKEN_FILE_PROVIDER, TokenFileAuth, tokenFileUser, useTokenFileAuth } from './kubeconfig-token.ts';
import { loadKubeConfig } from './kubeconfig.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-token-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function bearer(kc: KubeConfig): Promise<string | undefined> {
  const opts: { headers?: Record<string, string> } = { headers: {} };
  await kc.applyToHTTPSOptions(opts as never);
  return opts.headers?.['Authorization'];
}

describe('TokenFileAuth', () => {
  it("follows kubelet's atomic ..data swap on the very next request", async () => {
    const sa = await serviceAccountVolume(join(dir, 'sa'), { token: 'first\n', caPem: 'x' });
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: 'https://192.0.2.1:6443', skipTLSVerify: false }, tokenFileUser({ name: 'u' }, sa.tokenFile));
    kc.addAuthenticator(new TokenFileAuth());
    expect(await bearer(kc)).toBe('Bearer first');
    await sa.rotate('second');
    expect(await bearer(kc)).toBe('Bearer second');
    await sa.rotate('third');
    expect(await bearer(kc)).toBe('Bearer third');
  });

  it('re-reads an unchanged-looking file after maxAgeMs, as client-go does every minute', async () => {
    let now = 0;
    const auth = new TokenFileAuth({ now: () => now });
    const file = join(dir, 'token');
    await writeFile(file, 'aaaa');
    expect(auth.token(file)).toBe('aaaa');
    now = 59_000;
    expect(auth.token(file)).toBe('aaaa');
    now = 61_000;
    await writeFile(file, 'bbbb');
    expect(auth.token(file)).toBe('bbbb');
  });

  it('names the token file when it is missing or empty', async () => {
    const auth = new TokenFileAuth();
    expect(() => auth.token(join(dir, 'nope'))).toThrow(`cannot read the token file ${join(dir, 'nope')}: ENOENT`);
    await writeFile(join(dir, 'empty'), '\n');
    expect(() => auth.token(join(dir, 'empty'))).toThrow(`the token file ${join(dir, 'empty')} is empty`);
  });

  it("takes over client-node's in-cluster token user (loadFromCluster), whose own provider caches 60 s", async () => {
    const sa = await serviceAccountVolume(join(dir, 'var/run/secrets/kubernetes.io/serviceaccount'), { token: 'one', caPem: 'x' });
    const kc = new KubeConfig();
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    Object.assign(process.env, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
    try {
      kc.loadFromCluster(dir);
    } finally {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    useTokenFileAuth(kc);
    expect(kc.getCurrentUser()?.authProvider).toEqual({ name: TOKEN_FILE_PROVIDER, config: { path: sa.tokenFile } });
    expect(await bearer(kc)).toBe('Bearer one');
    await sa.rotate('two');
    expect(await bearer(kc)).toBe('Bearer two');
  });

  it("serves kubeadm's tokenFile through loadKubeConfig", async () => {
    const sa = await serviceAccountVolume(join(dir, 'sa'), { token: 'kubeadm-1', caPem: 'x' });
    await writeFile(
      join(dir, 'kubeconfig.conf'),
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- cluster: {server: "https://control-plane.example:6443", certificate-authority: ca.crt}',
        '  name: default',
        'contexts:',
        '- context: {cluster: default, user: default}',
        '  name: default',
        'current-context: default',
        'users:',
        '- name: default',
        `  user: {tokenFile: ${sa.tokenFile}}`,
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'ca.crt'), 'not read by this test');
    const kc = loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig.conf'), master: '' });
    expect(await bearer(kc)).toBe('Bearer kubeadm-1');
    await sa.rotate('kubeadm-2');
    expect(await bearer(kc)).toBe('Bearer kubeadm-2');
  });
});
