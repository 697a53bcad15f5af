/**
 * The real `kube-proxy-ts` process inside a node's network namespace, as the
 * process-level end-to-end tests run it: started with `ip netns exec`, output
 * collected, readiness polled with a caller's check (bounded), stopped with
 * SIGTERM (then SIGKILL) and awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

export interface AgentProcess {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface AgentProcessOptions {
  /** Extra environment variables for the agent. */
  readonly env?: Readonly<Record<string, string>>;
  /** What runs the agent (`args` are appended): node and src/main.ts by default; the image test passes `podman run ... IMAGE`. */
  readonly command?: readonly string[];
}

export async function startAgentProcess(
  ns: string,
  args: readonly string[],
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
  opts: AgentProcessOptions = {},
): Promise<AgentProcess> {
  const command = opts.command ?? [process.execPath, MAIN];
  const child = spawn('ip', ['netns', 'exec', ns, ...command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const agent: AgentProcess = {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const t0 = Date.now();
  while (!(await ready().catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode} before it was ready:\n${output.slice(-3000)}`);
    if (Date.now() - t0 > timeoutMs) {
      await agent.stop();
      throw new Error(`agent not ready after ${timeoutMs} ms:\n${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return agent;
}

/**
 * Polls `check` every 100 ms until it holds; prints and returns the time it
 * took. Throws after timeoutMs (with `context()`, e.g. the agent's output).
 */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000, context?: () => string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) {
      const ms = Date.now() - t0;
      console.log(`converged: ${what} in ${ms} ms`);
      return ms;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`did not converge within ${timeoutMs} ms: ${what}${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
