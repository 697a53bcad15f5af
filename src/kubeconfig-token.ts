/**
 * Bearer tokens read from a file: kubeadm's `tokenFile` and the in-cluster
 * service-account token (/var/run/secrets/kubernetes.io/serviceaccount/token).
 *
 * kubelet rotates a projected service-account token by writing a new
 * timestamped directory and atomically swapping the `..data` symlink that
 * `token` points through. client-node's own token-file provider (like
 * client-go's cached token source) re-reads the file only every 60 s, so a
 * node whose old token the API server already refuses stays locked out for
 * up to a minute. This provider checks the file's identity (device, inode,
 * size, modification time, through the symlinks) on every request and
 * re-reads it as soon as it changed (and at least every 60 s), so the first
 * request after a rotation already carries the new token. Together with the
 * informers' immediate retry after a 401 that is how a rotation is recovered
 * within a second instead of ~60-90 s. The token is trimmed, as client-go
 * does (a trailing newline would make an invalid header).
 */
import { readFileSync, statSync } from 'node:fs';
import type { KubeConfig, User } from '@kubernetes/client-node';

/** client-node's Authenticator (not exported by its index): what KubeConfig.addAuthenticator takes. */
type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];

/** authProvider name of users whose token comes from a file read by TokenFileAuth. */
export const TOKEN_FILE_PROVIDER = 'kube-proxy-ts/token-file';

interface Cached {
  readonly token: string;
  readonly identity: string;
  readonly readAt: number;
}

export class TokenFileAuth implements Authenticator {
  private readonly cache = new Map<string, Cached>();
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(o: { maxAgeMs?: number; now?: () => number } = {}) {
    this.maxAgeMs = o.maxAgeMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  isAuthProvider(user: User): boolean {
    return user.authProvider?.name === TOKEN_FILE_PROVIDER;
  }

  async applyAuthentication(user: User, opts: { headers?: Record<string, unknown> }): Promise<void> {
    const file = user.authProvider?.config?.['path'];
    if (!file) throw new Error(`user ${user.name}: token file provider without a path`);
    opts.headers ??= {};
    opts.headers['Authorization'] = `Bearer ${this.token(file)}`;
  }

  /** The token in `file`, re-read when the file changed or the cached copy is older than maxAgeMs. */
  token(file: string): string {
    let identity: string;
    try {
      const st = statSync(file);
      identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
    }
    const cached = this.cache.get(file);
    if (cached && cached.identity === identity && this.now() - cached.readAt < this.maxAgeMs) return cached.token;
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!token) throw new Error(`the token file ${file} is empty`);
    this.cache.set(file, { token, identity, readAt: this.now() });
    return token;
  }
}

/** A user whose bearer token is read from `path` by TokenFileAuth. */
export function tokenFileUser(user: User, path: string): User {
  return { ...user, authProvider: { name: TOKEN_FILE_PROVIDER, config: { path } } };
}

/**
 * Moves every user of client-node's own token-file provider (the in-cluster
 * configuration's) to TokenFileAuth and registers one TokenFileAuth on the
 * KubeConfig when any user needs it.
 */
export function useTokenFileAuth(kc: KubeConfig): void {
  kc.users = kc.users.map((u): User => {
    const file = u.authProvider?.name === 'tokenFile' ? u.authProvider.config?.['tokenFile'] : undefined;
    return file ? tokenFileUser(u, file) : u;
  });
  if (kc.users.some((u) => u.authProvider?.name === TOKEN_FILE_PROVIDER)) kc.addAuthenticator(new TokenFileAuth());
}
