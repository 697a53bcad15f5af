/**
 * The two proxy modes as the agent sees them: a ModeBackend plus what runs
 * around it (the iptables mode's canary monitor; the userspace mode's
 * listeners). Starting a mode first removes the other mode's rules, so
 * `--mode` can be flipped by restarting the agent.
 */
import { USERSPACE_CHAINS, IPTABLES_MODE_CHAINS, KUBE_PROXY_CANARY } from '../iptables/chains.ts';
import { isServiceChain } from '../iptables/chain-names.ts';
import { removeKubeProxyRules } from '../iptables/cleanup.ts';
import { IptablesBackend, NFT_BATCH_CHAINS } from '../iptables/iptables-backend.ts';
import type { Iptables } from '../iptables/iptables.ts';
import type { ModeBackend } from '../proxier/backend.ts';
import type { IPFamily } from '../proxier/types.ts';
import type { ProxyConfig } from './config.ts';
import { renderOptionsFrom } from './desired.ts';
import type { Logger } from '../proxier/log.ts';
import type { NodeProbe } from './node-probe.ts';
import type { Metrics } from './servers/metrics.ts';
import { every, type Clock } from '../proxier/clock.ts';
import { createConntrack } from '../proxier/conntrack.ts';
import type { CommandRunner } from '../proxier/exec.ts';

export interface ModeDeps {
  readonly runner: CommandRunner;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface ModeRuntime {
  readonly backend: ModeBackend;
  readonly families: readonly IPFamily[];
  /** Called after each successful full sync. */
  afterFullSync(): void;
  /** Starts background checks; `resync` forces a full sync. Returns a stop function. */
  monitor(resync: () => void): () => void;
}

/** Removes the other mode's chains from every family. */
export async function removeOtherMode(handles: ReadonlyMap<IPFamily, Iptables>, mode: ProxyConfig['mode'], log: Logger): Promise<void> {
  const other =
    mode === 'iptables'
      ? (n: string) => (USERSPACE_CHAINS as readonly string[]).includes(n)
      : (n: string) => (IPTABLES_MODE_CHAINS as readonly string[]).includes(n) || isServiceChain(n) || n === KUBE_PROXY_CANARY;
  for (const ipt of handles.values()) {
    const removed = await removeKubeProxyRules(ipt, { chains: other });
    if (removed) log.info({ ipFamily: ipt.family, chains: removed }, `removed ${mode === 'iptables' ? 'userspace' : 'iptables'}-mode rules left by a previous run`);
  }
}

export function iptablesMode(config: ProxyConfig, probe: NodeProbe, deps: ModeDeps): ModeRuntime {
  const log = deps.logger;
  const liberal = config.conntrackTCPBeLiberal || probe.conntrackLiberal;
  if (liberal && !config.conntrackTCPBeLiberal) log.info('nf_conntrack_tcp_be_liberal is set: no INVALID drop rule');
  const backend = new IptablesBackend({
    iptables: probe.handles,
    render: { ...renderOptionsFrom(config, { randomFully: probe.randomFully }), conntrackTCPLiberal: liberal },
    logger: log,
    now: () => deps.clock.now(),
    metrics: deps.metrics,
    conntrack: createConntrack({ runner: deps.runner }),
    batchChains: probe.backend === 'nft' ? NFT_BATCH_CHAINS : 0,
  });
  let canariesMade = false;
  return {
    backend,
    families: [...probe.handles.keys()],
    afterFullSync() {
      if (canariesMade) return;
      canariesMade = true;
      void backend.ensureCanaries().catch((err: unknown) => log.warn({ err }, 'cannot create canary chains'));
    },
    monitor(resync) {
      // An outside flush of the tables (firewalld reload, iptables -F) removes the canary: rewrite everything.
      return every(deps.clock, config.syncPeriodMs, async () => {
        if (canariesMade && (await backend.canaryMissing())) {
          log.warn('canary chain KUBE-PROXY-CANARY is gone: the tables were flushed from outside; resyncing everything');
          await backend.ensureCanaries().catch((err: unknown) => log.warn({ err }, 'cannot recreate canary chains'));
          resync();
        }
      });
    },
  };
}
