/**
 * How fast V8 lets the agent's heap grow between full collections, and (in the iptables and nftables modes) how far
 * it optimizes (RULE_MODES_TIER_FLAGS).
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
import { runInNewContext } from 'node:vm';
import type { ProxyModeName } from '../../proxier/mode.ts';

export const AGENT_HEAP_GROWING_PERCENT = 15;

/**
 * V8's optimizing tiers, off for the rule-writing modes: `--no-maglev --no-turbofan` leaves Ignition and Sparkplug, as
 * `--max-opt=1` on node's command line does (that flag has no effect once V8 runs; these two do). What those agents
 * run is mostly code that runs a few times per sync, where the optimizing compilers cost more than they save: at
 * 10,000 services (iptables mode, `--max-opt=1`) the peak was 152 / 154 MiB against 165 / 167, CPU to the first sync
 * 6.6 / 5.8 s against 7.5 / 7.4, event-to-rules p99 171 against 196 ms (render p50 +1.3 ms), and the idle agent no
 * longer pages in TurboFan's code (76 MiB in 4 of 4 runs; 84 in 5 of 18 without). Not in the userspace mode: its
 * proxy's data path is hot code, and there it halved the connections per second (BENCHMARKS.md "The idle agent,
 * fifth pass"). Any of these flags given to node leaves the tiers as node was told.
 */
export const RULE_MODES_TIER_FLAGS = ['--no-maglev', '--no-turbofan'] as const;

/** The V8 flags to set for the agent, given node's own command-line flags (process.execArgv) and the mode it runs. */
export function agentHeapFlags(execArgv: readonly string[], mode: ProxyModeName): string[] {
  const given = (...names: string[]): boolean =>
    execArgv.some((a) => names.some((name) => new RegExp(`^--${name.replace(/-/g, '[-_]')}(=|$)`).test(a)));
  const flags: string[] = [];
  if (!given('heap-growing-percent')) flags.push(`--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`);
  if (mode !== 'userspace' && !given('max-opt', 'maglev', 'no-maglev', 'turbofan', 'no-turbofan')) flags.push(...RULE_MODES_TIER_FLAGS);
  return flags;
}

/** Sets the agent's V8 flags; in the nftables mode, also gives it V8's full collection (exposeFullCollection). */
export function tuneAgentHeap(execArgv: readonly string[], mode: ProxyModeName): { readonly collectGarbage?: () => void } {
  for (const flag of agentHeapFlags(execArgv, mode)) setFlagsFromString(flag);
  return mode === 'nftables' ? { collectGarbage: exposeFullCollection() } : {};
}

/**
 * V8's full garbage collection as a function the agent can call (the nftables mode: while nft applies each large
 * transaction, src/mode-nftables.ts). `--expose-gc` set at run time gives every context made after it a `gc`; the
 * agent's own global gets none. Set when tuneAgentHeap's flags are, after the modules are loaded (the compile cache
 * is keyed by V8's flags).
 *
 * Why a context's `gc` rather than `%CollectGarbage` (natives syntax, which needs no context): with a second context
 * alive, V8's memory reducer finds the allocation rate low once the agent goes quiet and runs its shrinking
 * collections; without one it never does. At 10,000 services that holds the agent ~15-20 MiB lower after its first
 * sync for ~0.4 s of CPU a minute, and `%CollectGarbage` lowered the first sync's peak in only half the runs
 * (BENCHMARKS.md, "That window's CPU, explained").
 */
export function exposeFullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
