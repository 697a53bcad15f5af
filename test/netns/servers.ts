/**
 * Starts and stops pod-server.ts processes, one inside each pod's network
 * namespace. start resolves once every server printed "ready" (all ports
 * bound), or rejects naming the pod whose server failed and why.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

export interface PodServerOptions {
  readonly tcp?: readonly number[];
  readonly udp?: readonly number[];
  /** TCP ports that echo bytes back (bulk transfers). */
  readonly echo?: readonly number[];
  /** Pod names to serve (default: every pod). */
  readonly pods?: readonly string[];
  /** Bound on the wait for "ready" (default 15 s). */
  readonly readyTimeoutMs?: number;
}

export interface ServedPod {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly ip6: string | null;
}

export interface PodServers {
  readonly pids: ReadonlyMap<string, number>;
  /** SIGTERM, then SIGKILL after 2 s; resolves when every server exited. */
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('./pod-server.ts', import.meta.url));

const SPAWN = { stdin: 'ignore', buffer: false, reject: false, forceKillAfterDelay: 2000 } as const;
type Child = ResultPromise<typeof SPAWN>;

function waitReady(pod: string, child: Child, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`pod-server in ${pod}: not ready after ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`pod-server in ${pod} exited (code ${r.exitCode ?? r.signal}) before it was ready: ${stderr.trim() || r.shortMessage}`));
    });
  });
}

export async function startPodServers(pods: readonly ServedPod[], opts: PodServerOptions): Promise<PodServers> {
  const chosen = opts.pods === undefined ? pods : opts.pods.map((name) => pods.find((p) => p.name === name) ?? fail(name));
  const children = new Map<string, Child>();
  const stop = async (): Promise<void> => {
    for (const child of children.values()) child.kill('SIGTERM');
    await Promise.all([...children.values()]);
  };
  try {
    await Promise.all(
      chosen.map((pod) => {
        const args = ['--name', pod.name, '--ip', [pod.ip, ...(pod.ip6 === null ? [] : [pod.ip6])].join(',')];
        for (const [flag, ports] of [
          ['--tcp', opts.tcp],
          ['--udp', opts.udp],
          ['--echo', opts.echo],
        ] as const) {
          if (ports !== undefined && ports.length > 0) args.push(flag, ports.join(','));
        }
        const child: Child = execa('ip', ['netns', 'exec', pod.ns, process.execPath, SERVER, ...args], SPAWN);
        children.set(pod.name, child);
        return waitReady(pod.name, child, opts.readyTimeoutMs ?? 15_000);
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const pids = new Map<string, number>();
  for (const [name, child] of children) if (child.pid !== undefined) pids.set(name, child.pid);
  return { pids, stop };
}

function fail(name: string): never {
  throw new Error(`startPodServers: no pod named ${JSON.stringify(name)}`);
}
