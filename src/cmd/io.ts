/**
 * What a subcommand may touch of the outside world. src/main.ts provides the
 * real thing; tests provide buffers and fakes.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../proxier/log.ts';
import type { Clock } from '../../proxier/clock.ts';
import type { CommandRunner } from '../../proxier/exec.ts';
import type { NftApi } from '../../nftables/nft.ts';
import type { ProxyModeName } from '../../proxier/mode.ts';

/** What the process offers the agent, from beforeAgentStart (src/main.ts). */
export interface AgentProcessHooks {
  /** V8's full garbage collection: the nftables mode runs one while nft applies each large transaction. */
  readonly collectGarbage?: () => void;
}

export interface CommandIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The logger for -v, --vmodule and --logging-format (tests ignore them and read lines back). */
  readonly makeLogger: (opts: {
    readonly verbosity: number;
    readonly loggingFormat: 'text' | 'json';
    readonly logSplitStream?: boolean;
    readonly vmodule?: string;
    readonly logInfoBufferSize?: number;
    readonly logFlushFrequencyMs?: number;
    /** --profiling: -v can be changed while running (/debug/flags/v). */
    readonly profiling?: boolean;
  }) => Logger;
  readonly osHostname?: () => string;
  /** For commands that act on the node (run, cleanup, diff, trace); made for a network namespace in tests and the demo. */
  readonly runner?: CommandRunner;
  readonly clock?: Clock;
  /**
   * This host's interface addresses, among which `diff` wants the NodePorts, as the agent does (default: `ip -j addr
   * show` through `runner`, src/system/interfaces.ts).
   */
  readonly interfaceAddresses?: () => readonly string[] | Promise<readonly string[]>;
  /** nft for diff and trace with --mode=nftables; default: the real nft through `runner`. Tests pass a FakeNft. */
  readonly nft?: NftApi;
  /** Builds API access from --kubeconfig / --master / in-cluster settings. */
  readonly kubeConfig?: (opts: { kubeconfig: string; master: string }) => KubeConfig;
  /** Resolves with the signal name when the process is asked to stop (SIGTERM, SIGINT). */
  readonly stopSignal?: () => Promise<string>;
  /**
   * Called by the agent once its modules are loaded, just before it starts, with the mode it runs (src/main.ts: V8's
   * heap growing factor and, in the rule-writing modes, its tiers: src/system/agent-heap.ts). Not earlier: a V8 flag
   * changed before a module is compiled makes Node's compile cache reject that module's cached code (the cache is keyed
   * by V8's flags), so the image's warmed cache would go unused. Returns what the process offers the agent
   * (AgentProcessHooks: in the nftables mode, V8's full collection).
   */
  readonly beforeAgentStart?: (mode: ProxyModeName) => AgentProcessHooks | void;
  /** Sets the process's own oom_score_adj (the agent, --oom-score-adj); returns why not, or null. Absent in tests. */
  readonly setOomScoreAdj?: (value: number) => string | null;
  /** Size of the terminal stdout writes to; absent when stdout is not a terminal (top redraws in place only on one). */
  readonly terminal?: { readonly columns: number; readonly rows: number };
}
