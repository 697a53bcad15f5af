/**
 * Starting the nftables mode on a node: upstream's checks first (nft >= 1.0.1
 * as knftables.New, kernel >= 5.13 as platformCheckSupported, skipped with
 * KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK), then the families whose
 * `nft --check` accepts the table, then the mode on one long-running `nft -i`
 * (NftSession) in the runner's network namespace; given the process's full
 * garbage collection, the session runs it while nft applies large transactions.
 */
import { release } from 'node:os';
import { Nft } from '../nftables/nft.ts';
import { NftablesMode, type NftTables } from '../nftables/nftables-mode.ts';
import { NftSession, type NftLauncher } from '../nftables/nft-session.ts';
import { TABLE_NAME, nftFamily } from '../nftables/model.ts';
import { checkKernelVersion, checkNftVersion } from '../nftables/version.ts';
import type { Clock } from '../proxier/clock.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { IPFamily } from '../proxier/types.ts';
import type { ProxyConfig } from './config.ts';
import { nftRenderOptionsFrom } from './desired-nft.ts';
import { createNftLauncher } from './system/nft-launcher.ts';

/**
 * A transaction at least this long gets a full garbage collection while nft applies it (NftSession's whileApplying):
 * the cold start's chunks (~1 MB each at 10,000 services) and full syncs, never a partial sync's few kB. Each chunk
 * leaves 1.5-2 MB of garbage in the old generation (its text, the pieces it was made from), so between V8's own full
 * collections, every ~6 chunks, the agent's resident size climbed ~6 MiB above its level; collected at each chunk,
 * while this process would only wait for nft, the first sync's peak at 10,000 services is that much lower for ~1.4 s of
 * CPU on the other core and no time added to the sync (BENCHMARKS.md, "The first sync's garbage"). The collector's
 * context also costs ~0.4 s of CPU a minute later on, V8's memory reducer running, which keeps the agent ~15-20 MiB
 * lower (agent-heap.ts, exposeFullCollection).
 */
export const COLLECT_AFTER_BYTES = 256 * 1024;

export interface NftablesNode {
  /** The node's nft (tests: FakeNft); default `nft` through the runner, transactions through one `nft -i`. */
  readonly nft?: NftTables;
  /** `nft --version` output (default: run it). */
  readonly nftVersion?: () => Promise<string>;
  /** The kernel release, as `uname -r` (default os.release()). */
  readonly kernelRelease?: () => string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** V8's full garbage collection (src/main.ts gives the agent one), run while nft applies each large transaction. */
  readonly collectGarbage?: () => void;
}

export interface NftablesModeStartDeps extends NftablesNode {
  readonly runner: CommandRunner;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly conntrack: Conntrack;
}

/** A start-up refusal (old nft or kernel, no family works): the agent exits with its message. */
export class NftablesUnsupportedError extends Error {
  override readonly name = 'NftablesUnsupportedError';
}

export async function startNftablesMode(config: ProxyConfig, deps: NftablesModeStartDeps): Promise<NftablesMode> {
  const plain = new Nft(deps.runner);
  let version: string;
  try {
    version = await (deps.nftVersion ?? (() => plain.version()))();
  } catch (err) {
    throw new NftablesUnsupportedError(`--mode=nftables needs the nft program (Debian package nftables): ${(err as Error).message}`);
  }
  const problem = checkNftVersion(version) ?? checkKernelVersion((deps.kernelRelease ?? release)(), deps.env ?? process.env);
  if (problem !== null) throw new NftablesUnsupportedError(problem);

  const channels = deps.nft ? null : await agentNftChannels(deps.runner, deps.logger, deps.collectGarbage);
  const nft: NftTables = deps.nft ?? channels!.nft;
  const families: IPFamily[] = [];
  for (const family of ['IPv4', 'IPv6'] as const) {
    try {
      await nft.check(`add table ${nftFamily(family)} ${TABLE_NAME}\n`);
      families.push(family);
    } catch (err) {
      deps.logger.warn(
        { ipFamily: family, err: (err as Error).message },
        `nftables does not take an ${nftFamily(family)} table here: ${family} services are not proxied`,
      );
    }
  }
  if (families.length === 0) {
    await channels?.close();
    throw new NftablesUnsupportedError(`nft accepts neither an ip nor an ip6 ${TABLE_NAME} table on this node`);
  }
  deps.logger.info({ nft: version, families }, 'nftables mode');
  return new NftablesMode(
    {
      families,
      render: nftRenderOptionsFrom(config),
      monitorPeriodMs: config.syncPeriodMs,
      ...(config.trafficCounters
        ? { trafficCounters: { periodMs: config.trafficCountersPeriodMs, maxEndpoints: config.trafficCountersMaxEndpoints } }
        : {}),
    },
    {
      nft,
      clock: deps.clock,
      logger: deps.logger,
      conntrack: deps.conntrack,
      ...(channels ? { cleanupNft: channels.cleanupNft, closeNft: () => channels.close() } : {}),
    },
  );
}

/** How the agent talks to nft, in the runner's network namespace. */
export interface NftChannels {
  /** Transactions through one long-running `nft -i` (NftSession), listings and checks as Nft makes them. */
  readonly nft: Nft;
  /**
   * Stale-chain deletions: an `nft -i` of their own, beside the syncs' one, ended after each deletion (its deletes make
   * it load the names of the whole table, which it would keep while it lived).
   */
  readonly cleanupNft: { run(text: string): Promise<void> };
  close(): Promise<void>;
}

/**
 * The agent's channels: the sessions when a transaction can be staged for them (nft-launcher.ts: the OS temporary
 * directory or /dev/shm), else, said once, `nft -f -` for each transaction (upstream's way: ~20 ms more each).
 */
export async function agentNftChannels(runner: CommandRunner, log: Logger, collect?: () => void): Promise<NftChannels> {
  const options = runner.netns !== undefined ? { netns: runner.netns } : {};
  const launcher = createNftLauncher(options);
  const problem = await launcher.prepare();
  if (problem === null)
    return nftChannels(runner, { ...(collect ? { collect } : {}), launchers: { sessions: launcher, deletions: createNftLauncher(options) }, log });
  log.warn(`${problem}: each nftables transaction runs as its own \`nft -f -\` (~20 ms more a sync than through one \`nft -i\`)`);
  const plain = new Nft(runner);
  return { nft: plain, cleanupNft: plain, close: async () => undefined };
}

export interface NftChannelOptions {
  /** The process's full garbage collection, run while nft applies each large transaction. */
  readonly collect?: () => void;
  readonly launchers?: { readonly sessions: NftLauncher; readonly deletions: NftLauncher };
  /** Where a transaction that could not be staged (and so ran as `nft -f -`) is reported, and staging working again. */
  readonly log?: Logger;
}

export function nftChannels(runner: CommandRunner, opts: NftChannelOptions = {}): NftChannels {
  const { collect, launchers, log } = opts;
  const where = runner.netns !== undefined ? { netns: runner.netns } : {};
  const session = new NftSession(launchers?.sessions ?? createNftLauncher(where), collect ? { whileApplying: collectAfterLarge(collect) } : {});
  const deletions = new NftSession(launchers?.deletions ?? createNftLauncher(where));
  const onStaging = (problem: string | null) => {
    if (problem !== null) log?.warn(`${problem}: this nftables transaction, and each one until staging works again, runs as its own \`nft -f -\``);
    else log?.info('nftables transactions are staged again: back to the `nft -i` session');
  };
  return {
    nft: new Nft(runner, { session, onStaging }),
    cleanupNft: {
      async run(text) {
        try {
          await deletions.run(text);
        } finally {
          await deletions.close();
        }
      },
    },
    close: async () => void (await Promise.all([session.close(), deletions.close()])),
  };
}

/** NftSession's whileApplying for the agent: `collect` after each transaction of COLLECT_AFTER_BYTES or more. */
export function collectAfterLarge(collect: () => void): (bytes: number) => void {
  return (bytes) => {
    if (bytes >= COLLECT_AFTER_BYTES) collect();
  };
}
