/**
 * Test PKI for the fake API server, made at test time with the openssl CLI
 * (node:crypto makes keys but no X.509 certificates): a CA and a serving
 * certificate it signs, with the subject alternative names a test needs
 * (localhost and 127.0.0.1 always; a kubeadm-style name or a node address on
 * request). Nothing is committed: the files live in a temporary directory
 * removed when the test process exits. EC P-256 keys keep generation fast.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';

export interface TestPki {
  /** PEM of the CA that signed the server certificate (what a kubeconfig trusts). */
  readonly caPem: string;
  /** The same CA as a file (kubeconfig `certificate-authority`, in-cluster ca.crt). */
  readonly caFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Names and addresses the serving certificate is valid for. */
  readonly sans: readonly string[];
  /** The directory of the CA's files (its key signs client certificates, see makeClientCert). */
  readonly dir: string;
}

/** A client certificate and its key, as PEM and as files (kubeconfig `client-certificate` / `client-key`). */
export interface ClientCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

const DEFAULT_SANS = ['localhost', '127.0.0.1'];

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh CA and a server certificate valid for localhost, 127.0.0.1 and `extraSans`. */
export function makeTestPki(extraSans: readonly string[] = [], cn = 'fake-apiserver-ca'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const sans = [...new Set([...DEFAULT_SANS, ...extraSans])];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver'], dir);
  const alt = sans.map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${alt}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return { caPem: read('ca.crt'), caFile: join(dir, 'ca.crt'), certPem: read('server.crt'), keyPem: read('server.key'), sans, dir };
}

/** openssl's dates (YYYYMMDDHHMMSSZ). */
function asn1Time(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace(/[-T:]/g, '')}Z`;
}

let clientSerial = 0;

/**
 * A client certificate signed by the PKI's CA, as the API server's x509 authenticator reads it: the user is the
 * common name, the groups are the organizations (kubeadm and k3s: CN=system:kube-proxy, the hard way adds
 * O=system:node-proxier). Valid from an hour ago for two days, or over [notBefore, notAfter] (an expired one, a
 * not-yet-valid one); `openssl ca` because `x509 -req` cannot set a start date. The files are in a directory of
 * their own, removed when the test process exits.
 */
export function makeClientCert(pki: TestPki, o: { cn: string; orgs?: readonly string[]; notBefore?: Date; notAfter?: Date }): ClientCert {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-client-cert-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const subject = [...(o.orgs ?? []).map((org) => `/O=${org}`), `/CN=${o.cn}`].join('');
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', subject],
    dir,
  );
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), `${(Date.now() * 1000 + ++clientSerial).toString(16).padStart(16, '0')}\n`);
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = this',
      '[this]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'x509_extensions = client',
      '[any]',
      'commonName = supplied',
      'organizationName = optional',
      '[client]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const now = Date.now();
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-preserveDN',
      '-config',
      'ca.cnf',
      '-cert',
      join(pki.dir, 'ca.crt'),
      '-keyfile',
      join(pki.dir, 'ca.key'),
      '-in',
      'client.csr',
      '-out',
      'client.crt',
      '-startdate',
      asn1Time(o.notBefore ?? new Date(now - 3_600_000)),
      '-enddate',
      asn1Time(o.notAfter ?? new Date(now + 2 * 86_400_000)),
    ],
    dir,
  );
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return { certPem: read('client.crt'), keyPem: read('client.key'), certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') };
}

let shared: TestPki | null = null;

/** One PKI per test process for servers that need only the default names (openssl runs once). */
export function defaultTestPki(): TestPki {
  shared ??= makeTestPki();
  return shared;
}
