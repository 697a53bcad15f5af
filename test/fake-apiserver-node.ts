/**
 * The fake API server as a node in a test cluster sees a real control plane,
 * and the agent process started the way a kubelet starts kube-proxy:
 *
 * - relayApiServer: socat inside the node's network namespace listens on
 *   :6443 and forwards each connection to the fake's unix socket (a path is
 *   reachable from every network namespace); TLS runs end to end, so the
 *   agent verifies the fake's certificate for the name it dialled.
 * - startNodeAgent: `ip netns exec NODE unshare -m --propagation private sh -c
 *   '...'` gives the agent a private mount namespace in which /etc/hosts is a
 *   bind-mounted test file (so `https://k8s-api.test:6443` resolves) and /run
 *   is a fresh tmpfs holding only the xtables lock and, when asked, the
 *   service-account volume bind-mounted at
 *   /var/run/secrets/kubernetes.io/serviceaccount: none of this touches the
 *   machine's own /etc/hosts or /var/run. The mounts die with the process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './agent-runner.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
export const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface Relay {
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess, grace = 5000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), grace);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** socat in `ns` on TCP `port` (all addresses) → the unix socket at `socketPath`; resolves once it listens. */
export async function relayApiServer(
  exec: (ns: string, cmd: string, args: string[]) => Promise<{ stdout: string }>,
  ns: string,
  port: number,
  socketPath: string,
): Promise<Relay> {
  const child = spawn('ip', ['netns', 'exec', ns, 'socat', `TCP-LISTEN:${port},fork,reuseaddr`, `UNIX-CONNECT:${socketPath}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(
    `socat relay on :${port} in ${ns}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`socat exited with ${child.exitCode}: ${err}`);
      return (await exec(ns, 'ss', ['-Hltn', `sport = :${port}`])).stdout.includes(`:${port}`);
    },
    5000,
  );
  return { stop: async () => void (await stopChild(child)) };
}

export interface NodeAgentOptions {
  /** A hosts file bind-mounted over /etc/hosts. */
  readonly hosts?: string;
  /** A directory bind-mounted at /var/run/secrets/kubernetes.io/serviceaccount. */
  readonly serviceAccount?: string;
  /** Environment of the agent (e.g. KUBERNETES_SERVICE_HOST/PORT). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface NodeAgent {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM (SIGKILL after 5 s); resolves with the exit code. */
  stop(): Promise<number | null>;
}

const MOUNTS = `set -e
if [ -n "$KPT_HOSTS" ]; then mount --bind "$KPT_HOSTS" /etc/hosts; fi
mount -t tmpfs -o mode=755 tmpfs /run
: > /run/xtables.lock
if [ -n "$KPT_SA" ]; then mkdir -p ${SA_MOUNT}; mount --bind -o ro "$KPT_SA" ${SA_MOUNT}; fi
unset KPT_HOSTS KPT_SA
exec "$@"`;

/** The kube-proxy-ts process in node namespace `ns`, in its own mount namespace (see the file comment). */
export function startNodeAgent(ns: string, args: readonly string[], o: NodeAgentOptions = {}): NodeAgent {
  const env = { ...process.env, ...o.env, KPT_HOSTS: o.hosts ?? '', KPT_SA: o.serviceAccount ?? '' };
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNTS, 'sh', process.execPath, MAIN, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output, stop: () => stopChild(child) };
}
