/**
 * Everything one sandbox run creates, and its removal: the agents, the
 * cluster (its namespaces and pod servers), the temporary objects
 * directory. teardown() is idempotent and safe to start at any moment,
 * also while the sandbox is still being built (an interrupt): it then
 * removes every namespace under the run's prefix, however far it got.
 */
import { rm } from 'node:fs/promises';
import type { Cluster } from '../../test/netns/cluster.ts';
import { createExecaRunner } from '../../src/system/exec.ts';
import { createNetnsOps } from '../../src/system/netns.ts';
import type { Agent } from './agents.ts';

export interface Resources {
  readonly prefix: string;
  cluster: Cluster | null;
  readonly agents: Agent[];
  dir: string | null;
}

export interface TeardownReport {
  readonly agents: readonly string[];
  readonly namespaces: number;
  readonly dir: string | null;
  /** Namespaces under the prefix still listed afterwards (should be none). */
  readonly left: readonly string[];
}

const pending = new WeakMap<Resources, Promise<TeardownReport>>();

export function newResources(prefix: string): Resources {
  return { prefix, cluster: null, agents: [], dir: null };
}

export async function namespacesUnder(prefix: string): Promise<string[]> {
  const net = createNetnsOps({ runner: createExecaRunner() });
  return (await net.listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
}

/** Deletes every namespace named "<prefix>-..." (and the processes inside); returns how many. */
export async function sweep(prefix: string): Promise<number> {
  const net = createNetnsOps({ runner: createExecaRunner() });
  return (await net.sweepNamespaces(prefix)).length;
}

async function doTeardown(res: Resources, fast: boolean): Promise<TeardownReport> {
  const agents = res.agents.map((a) => a.node);
  await Promise.all(res.agents.map((a) => a.stop(fast ? 500 : 3000).catch(() => undefined)));
  let namespaces = 0;
  if (res.cluster) {
    namespaces = res.cluster.namespaces.length;
    await res.cluster.destroy().catch(() => undefined);
  }
  // Whatever a half-built cluster left (createCluster had not returned yet).
  namespaces += await sweep(res.prefix).catch(() => 0);
  const dir = res.dir;
  if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  const left = await namespacesUnder(res.prefix).catch(() => [] as string[]);
  return { agents, namespaces, dir, left };
}

/** Stops the agents, deletes the namespaces and the directory; one removal per Resources however often it is called. */
export function teardown(res: Resources, opts: { fast?: boolean } = {}): Promise<TeardownReport> {
  let p = pending.get(res);
  if (!p) {
    p = doTeardown(res, opts.fast === true);
    pending.set(res, p);
  }
  return p;
}
