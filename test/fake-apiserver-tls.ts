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
  return { caPem: read('ca.crt'), caFile: join(dir, 'ca.crt'), certPem: read('server.crt'), keyPem: read('server.key'), sans };
}

let shared: TestPki | null = null;

/** One PKI per test process for servers that need only the default names (openssl runs once). */
export function defaultTestPki(): TestPki {
  shared ??= makeTestPki();
  return shared;
}
