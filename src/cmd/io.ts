/**
 * What a subcommand may touch of the outside world. src/main.ts provides the
 * real thing; tests provide buffers and fakes.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { Clock } from '../system/clock.ts';
import type { CommandRunner } from '../system/exec.ts';

export interface CommandIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly makeLogger: (verbosity: number) => Logger;
  readonly osHostname?: () => string;
  /** For commands that act on the node (run, cleanup, diff). */
  readonly runner?: CommandRunner;
  readonly clock?: Clock;
  /** Network namespace to act in (demo, tests); the caller's own when absent. */
  readonly netns?: string;
  /** Builds API access from --kubeconfig / --master / in-cluster settings. */
  readonly kubeConfig?: (opts: { kubeconfig: string; master: string }) => KubeConfig;
  /** Resolves with the signal name when the process is asked to stop (SIGTERM, SIGINT). */
  readonly stopSignal?: () => Promise<string>;
}
