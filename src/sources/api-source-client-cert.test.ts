/**
 * The API source authenticated by a client certificate, as k3s
 * (`/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig`: certificate-authority, client-certificate and client-key files),
 * kops and "Kubernetes the hard way" (the same as `*-data` fields) set kube-proxy up, against the fake API server's
 * x509 authenticator: the requests carry the certificate and no token; a refused certificate is named with why (an
 * expired one with its date, another CA's with its issuer, a key that is not the certificate's with both files); and
 * renewed files (`k3s certificate rotate`, `kubeadm certs renew`) are used at the next retry without a restart, as
 * client-go reloads certificate files.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../kubeconfig.ts';
import { recorder, useApiSourceHarness } from '../../test/api-source-harness.ts';
import { k3sKubeconfig } from '../../test/fake-apiserver-client.ts';
import { makeClientCert, makeTestPki, type ClientCert } from '../../test/fake-apiserver-tls.ts';
import { API_ANSWERED_BACKOFF, API_BACKOFF, cappedDelay } from './api-source.ts';

const h = useApiSourceHarness();
const DEFAULTS = { backoff: API_BACKOFF, answeredBackoff: API_ANSWERED_BACKOFF, reconnectDelayMs: cappedDelay(API_BACKOFF.maxMs!) };
const DAY = 86_400_000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-client-cert-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The certificate and key as k3s lays them out, in `agent/` next to the kubeconfig. */
async function install(cert: ClientCert): Promise<void> {
  await mkdir(join(dir, 'agent'), { recursive: true });
  await copyFile(cert.certFile, join(dir, 'agent', 'client-kube-proxy.crt'));
  await copyFile(cert.keyFile, join(dir, 'agent', 'client-kube-proxy.key'));
}

/**
 * k3s's kubeproxy.kubeconfig, with paths relative to the kubeconfig's directory (client-go resolves them so), or the
 * hard way's embedded `*-data`.
 */
async function kubeconfig(form: 'files' | 'data', cert?: ClientCert) {
  await mkdir(join(dir, 'agent'), { recursive: true });
  await writeFile(join(dir, 'agent', 'server-ca.crt'), h.server.pki.caPem);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cluster = form === 'files' ? 'certificate-authority: agent/server-ca.crt' : `certificate-authority-data: ${b64(h.server.pki.caPem)}`;
  const user =
    form === 'files'
      ? ['client-certificate: agent/client-kube-proxy.crt', 'client-key: agent/client-kube-proxy.key']
      : [`client-certificate-data: ${b64(cert!.certPem)}`, `client-key-data: ${b64(cert!.keyPem)}`];
  await writeFile(join(dir, 'kubeproxy.kubeconfig'), k3sKubeconfig(h.server.url, [cluster], user));
  return loadKubeConfig({ kubeconfig: join(dir, 'kubeproxy.kubeconfig'), master: '' });
}

describe('API access with a client certificate (k3s, kops, the hard way)', () => {
  it("k3s's kubeproxy.kubeconfig (files, relative to the kubeconfig as client-go resolves them): every request authenticated as system:kube-proxy, no token sent", async () => {
    h.seed();
    await install(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }));
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('files') });
    await rec.until(() => rec.log.includes('synced Node'), 'the Node informer synced');
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    const requests = h.server.requests();
    expect(new Set(requests.map((r) => r.user))).toEqual(new Set(['x509:system:kube-proxy']));
    expect(requests.filter((r) => r.authorization !== null)).toEqual([]);
    expect(rec.problems).toEqual([]);
  });

  it('the hard way (client-certificate-data, client-key-data, O=system:node-proxier): the same', async () => {
    h.seed();
    const cert = makeClientCert(h.server.pki, { cn: 'system:kube-proxy', orgs: ['system:node-proxier'] });
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('data', cert) });
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    expect(new Set(h.server.requests().map((r) => r.user))).toEqual(new Set(['x509:system:kube-proxy']));
  });

  it('an expired certificate: the 401 is explained with the file and its expiry date; renewed files are used at the next retry, without a restart', async () => {
    h.seed();
    const expired = makeClientCert(h.server.pki, {
      cn: 'system:kube-proxy',
      notBefore: new Date(Date.now() - 366 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    await install(expired);
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('files') });
    const file = join(dir, 'agent', 'client-kube-proxy.crt');
    await rec.until(() => rec.problems.some((p) => p.includes('401')), 'the 401 reported');
    expect(rec.problems.find((p) => p.includes('401'))).toMatch(
      new RegExp(
        `informer failed: HTTP 401 Unauthorized: the client certificate \\(CN=system:kube-proxy\\) in the client-certificate file ${file} expired on \\w{3} .+ GMT; retrying at once`,
      ),
    );
    expect(h.server.watchCount()).toBe(0);
    // `k3s certificate rotate` / `kubeadm certs renew`: new files in place.
    await install(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }));
    const t0 = Date.now();
    await h.server.until(() => h.server.watchCount() === 3, 'three watches with the renewed certificate', 6000);
    const ms = Date.now() - t0;
    console.log(`renewed client certificate: all three informers watching ${ms} ms after the files were replaced`);
    expect(ms).toBeLessThan(4000);
    expect(rec.log).toContain('synced Service');
  });

  it("another CA's certificate: its subject and issuer named, for comparison with the API server's --client-ca-file", async () => {
    h.seed();
    await install(makeClientCert(makeTestPki([], 'k3s-client-ca@1700000000'), { cn: 'system:kube-proxy' }));
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('files') });
    await rec.until(() => rec.problems.some((p) => p.includes('401')), 'the 401 reported');
    expect(rec.problems.find((p) => p.includes('401'))).toContain(
      `HTTP 401 Unauthorized: the API server refused the client certificate (CN=system:kube-proxy, issued by CN=k3s-client-ca@1700000000) in the client-certificate file ${join(dir, 'agent', 'client-kube-proxy.crt')}: not signed by a CA of its --client-ca-file?`,
    );
  });

  it("a client-key that is not the certificate's (a half-done renewal): both files named, nothing sent", async () => {
    h.seed();
    const cert = makeClientCert(h.server.pki, { cn: 'system:kube-proxy' });
    await install(cert);
    await copyFile(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }).keyFile, join(dir, 'agent', 'client-kube-proxy.key'));
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('files') });
    await rec.until(() => rec.problems.length > 0, 'a problem reported');
    expect(rec.problems[0]).toContain(
      `informer failed: TLS: the client-certificate ${join(dir, 'agent', 'client-kube-proxy.crt')} and client-key ${join(dir, 'agent', 'client-kube-proxy.key')} cannot be used: key values mismatch (ERR_OSSL_X509_KEY_VALUES_MISMATCH)`,
    );
    expect(h.server.requests()).toEqual([]);
  });

  it('a client-key file that is missing: named as such, and read once it is there', async () => {
    h.seed();
    await install(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }));
    await rm(join(dir, 'agent', 'client-kube-proxy.key'));
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig: await kubeconfig('files') });
    await rec.until(() => rec.problems.length > 0, 'a problem reported');
    expect(rec.problems[0]).toContain(
      `informer failed: cannot read the client-key file ${join(dir, 'agent', 'client-kube-proxy.key')} the kubeconfig names (ENOENT)`,
    );
    // Put in place, it is read at the next try.
    await install(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }));
    await h.server.until(() => h.server.watchCount() === 3, 'three watches once the key is there', 6000);
  });

  it('a certificate-authority file not there yet: named as such, and used once it is', async () => {
    h.seed();
    await install(makeClientCert(h.server.pki, { cn: 'system:kube-proxy' }));
    const kubeConfig = await kubeconfig('files');
    const ca = join(dir, 'agent', 'server-ca.crt');
    await rm(ca);
    const rec = recorder();
    await h.startSource(rec, { ...DEFAULTS, kubeConfig });
    await rec.until(() => rec.problems.length > 0, 'a problem reported');
    expect(rec.problems[0]).toContain(
      `informer failed: cannot read the certificate-authority file ${ca} the kubeconfig names (ENOENT); trying again`,
    );
    await writeFile(ca, h.server.pki.caPem);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches once the CA is there', 6000);
  });
});
