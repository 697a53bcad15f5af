/**
 * How fast V8 lets the agent's heap grow between full collections.
 *
 * V8 sets the next old-generation limit at the live heap times a factor it
 * chooses from 1.1 to 4 by how little time collections have been taking. An
 * agent that lists 10,000 services and renders their rules grows its live
 * heap in steps for ~15 s, each step far below the limit, so the resident
 * size settles at the last limit rather than at what is live:
 * ~300 MiB for ~215 MiB of modules and data (BENCHMARKS.md, "Agent memory:
 * the heap growing factor"). `--heap-growing-percent=15` fixes the factor at
 * 1.15: at that size 1.25 took 26-45 MiB off the peak and 1.15 ~8 MiB more,
 * for the same CPU within the spread; 1.10 cost ~20 % more CPU,
 * `--optimize-for-size` ~40 %.
 *
 * Set at run time, for the agent only: `render` of a large objects file is
 * CPU-bound and short, and keeps V8's own choice. V8 reads the flag at every
 * collection, so setting it before the agent starts works like the command
 * line flag; a `--heap-growing-percent` given to node (the image's
 * ENTRYPOINT, a DaemonSet's command) wins. It is set after the agent's
 * modules are loaded (CommandIO.beforeAgentStart): V8's code cache is keyed
 * by its flags, so a module compiled after the change would find its cached
 * code rejected (test/image.e2e.test.ts checks that none is).
 */
import { setFlagsFromString } from 'node:v8';

export const AGENT_HEAP_GROWING_PERCENT = 15;

/** The V8 flags to set for the agent, given node's own command-line flags (process.execArgv). */
export function agentHeapFlags(execArgv: readonly string[]): string[] {
  const given = execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a));
  return given ? [] : [`--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`];
}

export function tuneAgentHeap(execArgv: readonly string[]): void {
  for (const flag of agentHeapFlags(execArgv)) setFlagsFromString(flag);
}
