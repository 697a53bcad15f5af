/**
 * kube-proxy-ts as the sandbox runs it: one agent process per node, started
 * inside the node's network namespace in standalone mode (--objects, no API
 * server), exactly as an operator would:
 *
 *   ip netns exec NS node src/main.ts --mode M --objects DIR --hostname-override node-1 --cluster-cidr 10.244.0.0/16
 *
 * Ready means: its rules for every service address are in the node's nat
 * table (read with the iptables backend the agent said it picked), or in
 * nftables mode in its `ip kube-proxy` table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Cluster } from '../../test/netns/cluster.ts';
import { CLUSTER_CIDR } from './objects.ts';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
export type Mode = 'iptables' | 'nftables' | 'userspace';

export interface Agent {
  readonly node: string;
  readonly mode: Mode;
  readonly ns: string;
  readonly child: ChildProcess;
  /** The argv after `ip netns exec NS`, for printing. */
  readonly argv: readonly string[];
  output(): string;
  /** iptables backend from the agent's first log line ("nft" until it says otherwise). */
  backend(): 'nft' | 'legacy';
  /** SIGTERM, SIGKILL after killAfterMs; resolves when it exited. */
  stop(killAfterMs?: number): Promise<void>;
}

export function agentArgs(mode: Mode, objectsDir: string, node: string): string[] {
  const counters = mode === 'userspace' ? [] : ['--traffic-counters', '--traffic-counters-period', '2s'];
  return ['--mode', mode, '--objects', objectsDir, '--hostname-override', node, '--cluster-cidr', CLUSTER_CIDR, ...counters];
}

export function startAgent(cluster: Cluster, node: string, mode: Mode, objectsDir: string): Agent {
  const ns = cluster.node(node).ns;
  const argv = [process.execPath, MAIN, ...agentArgs(mode, objectsDir, node)];
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer): void => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`cannot start the agent: ${err.message}\n`)));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    node,
    mode,
    ns,
    child,
    argv: ['node', 'src/main.ts', ...agentArgs(mode, objectsDir, node)],
    output: () => output,
    backend: () => (/"backend":"legacy"/.test(output) ? 'legacy' : 'nft'),
    async stop(killAfterMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The node's nat table as iptables-save prints it. */
export async function natTable(cluster: Cluster, agent: Agent): Promise<string> {
  const r = await cluster.exec(agent.ns, `iptables-${agent.backend()}-save`, ['-t', 'nat'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`iptables-${agent.backend()}-save in ${agent.ns}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The node's `ip kube-proxy` table as `nft list` prints it. */
export async function nftTable(cluster: Cluster, agent: Agent): Promise<string> {
  const r = await cluster.exec(agent.ns, 'nft', ['list', 'table', 'ip', 'kube-proxy'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nft list table ip kube-proxy in ${agent.ns}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Polls until the nat table routes every address in `addresses`; returns the time it took. */
export async function waitProgrammed(
  cluster: Cluster,
  agent: Agent,
  addresses: readonly string[],
  signal: AbortSignal,
  timeoutMs = 30_000,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    signal.throwIfAborted();
    if (agent.child.exitCode !== null || agent.child.signalCode !== null) {
      throw new Error(
        `kube-proxy-ts on ${agent.node} exited (${agent.child.exitCode ?? agent.child.signalCode}) before writing its rules:\n${tail(agent.output())}`,
      );
    }
    // Either --logging-format: klog text (the default) or JSON.
    if (/\] "starting kube-proxy-ts"|"msg":"starting kube-proxy-ts"/.test(agent.output())) {
      if (agent.mode === 'nftables') {
        const table = await nftTable(cluster, agent).catch(() => '');
        if (addresses.every((a) => table.includes(`${a} . `))) return Date.now() - t0;
      } else {
        const nat = await natTable(cluster, agent).catch(() => '');
        if (addresses.every((a) => nat.includes(`-d ${a}/32`))) return Date.now() - t0;
      }
    }
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `kube-proxy-ts on ${agent.node} wrote no rules for ${addresses.join(', ')} within ${timeoutMs / 1000} s:\n${tail(agent.output())}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function tail(text: string, lines = 15): string {
  return text
    .trim()
    .split('\n')
    .slice(-lines)
    .map((l) => `  | ${l}`)
    .join('\n');
}
