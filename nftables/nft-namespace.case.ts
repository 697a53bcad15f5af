/**
 * For end-to-end tests of this folder: each call runs its callback with an Nft (and the runner) bound to a fresh
 * network namespace, removed afterwards; leftovers of an interrupted run under the prefix are swept before and
 * after the file's tests.
 */
import { afterAll, beforeAll } from 'vitest';
import type { CommandRunner } from '../proxier/exec.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { Nft } from './nft.ts';

export type InNamespace = <T>(fn: (nft: Nft, exec: CommandRunner) => Promise<T>) => Promise<T>;

/** Registers the sweeps with the calling file's hooks and returns its `inNamespace`. */
export function nftNamespaces(prefix: string): InNamespace {
  const net = createNetnsOps({ runner: createExecaRunner() });
  let serial = 0;
  beforeAll(async () => net.sweepNamespaces(prefix));
  afterAll(async () => net.sweepNamespaces(prefix));
  return async (fn) => {
    const ns = `${prefix}-${process.pid}-${serial++}`;
    await net.addNamespace(ns);
    try {
      const exec = createExecaRunner({ netns: ns });
      return await fn(new Nft(exec), exec);
    } finally {
      await net.deleteNamespace(ns);
    }
  };
}
