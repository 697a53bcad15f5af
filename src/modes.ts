/**
 * The mode switch: --mode and the configuration -> the one ProxyMode the
 * agent runs (each mode owns its runtime: iptables/iptables-mode.ts,
 * nftables/nftables-mode.ts, userspace/userspace-mode.ts). Starting a mode
 * first removes the other modes' rules (mode-switch.ts), so `--mode` can be
 * flipped by restarting the agent.
 */
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import { nfacctTool, NfacctToolMissing, type Nfacct } from '../iptables/nfacct.ts';
import type { NodeProbe } from '../iptables/node-probe.ts';
import type { Clock } from '../proxier/clock.ts';
import type { Conntrack } from '../proxier/conntrack.ts';
import { readProcFile, type CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { ProxyMode } from '../proxier/mode.ts';
import type { UserspaceEvent } from '../userspace/proxy-opener.ts';
import { UserspaceMode } from '../userspace/userspace-mode.ts';
import type { ProxyConfig } from './config.ts';
import { detectLocalFrom, renderOptionsFrom } from './desired.ts';
import { startNftablesMode, type NftablesNode } from './mode-nftables.ts';
import { hostInterfaceIP } from './system/interfaces.ts';

export interface ModeDeps {
  readonly runner: CommandRunner;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly conntrack: Conntrack;
  /** Userspace mode's connection and listener events (metrics). */
  readonly onUserspaceEvent?: (service: string, e: UserspaceEvent) => void;
  /** The nftables mode's nft, version and kernel (tests); the node's when absent. */
  readonly nftables?: NftablesNode;
}

export async function createMode(config: ProxyConfig, probe: NodeProbe, deps: ModeDeps): Promise<ProxyMode> {
  const { clock, logger, conntrack } = deps;
  if (config.mode === 'nftables') return startNftablesMode(config, { ...deps.nftables, runner: deps.runner, clock, logger, conntrack });
  if (config.mode === 'userspace') {
    if (config.trafficCounters)
      logger.warn('--traffic-counters: userspace mode has no KUBE-SEP counters; its kubeproxy_ts_userspace_* metrics count traffic per service port');
    return new UserspaceMode(
      {
        iptables: probe.handles,
        bindAddress: config.bindAddress,
        portRange: config.portRange,
        udpIdleTimeoutMs: config.udpIdleTimeoutMs,
        detectLocal: detectLocalFrom(config),
      },
      {
        clock,
        logger,
        conntrack,
        fallbackHostIP: (family) => hostInterfaceIP(deps.runner, family),
        ...(deps.onUserspaceEvent ? { onEvent: deps.onUserspaceEvent } : {}),
      },
    );
  }
  // Upstream's iptables NewProxier: pods on a Linux bridge reach Services (and themselves through one) only when
  // br_netfilter hands bridged packets to iptables. Said when the switch is readable and off, as upstream says it.
  const bridged = await readProcFile(deps.runner, '/proc/sys/net/bridge/bridge-nf-call-iptables');
  if (bridged !== null && bridged !== '1')
    logger.info(
      'Missing br-netfilter module or unset sysctl br-nf-call-iptables, proxy may not work as intended (pods on a Linux bridge need net.bridge.bridge-nf-call-iptables=1)',
    );
  const liberal = config.conntrackTCPBeLiberal || probe.conntrackLiberal;
  if (liberal && !config.conntrackTCPBeLiberal) logger.info('nf_conntrack_tcp_be_liberal is set: no INVALID drop rule');
  const nfacct = await nodeNfacct(nfacctTool(deps.runner), logger);
  return new IptablesMode(
    {
      iptables: probe.handles,
      render: { ...renderOptionsFrom(config, { randomFully: probe.randomFully }), conntrackTCPLiberal: liberal },
      batchChains: probe.backend === 'nft' ? NFT_BATCH_CHAINS : 0,
      canaryPeriodMs: config.syncPeriodMs,
      ...(config.trafficCounters
        ? { trafficCounters: { periodMs: config.trafficCountersPeriodMs, maxEndpoints: config.trafficCountersMaxEndpoints } }
        : {}),
    },
    { clock, logger, conntrack, runner: deps.runner, ...(nfacct ? { nfacct } : {}) },
  );
}

/**
 * Upstream's iptables mode opens its nfacct runner (nfacct.New), makes the counters on each full sync and exports
 * their packets as metrics. Without the tool there are neither: said once, and the rules count into nothing.
 */
async function nodeNfacct(nfacct: Nfacct, logger: Logger): Promise<Nfacct | null> {
  const toolMissing = await nfacct.list().then(
    () => null,
    (err: Error) => (err instanceof NfacctToolMissing ? err.message : null),
  );
  if (toolMissing === null) return nfacct;
  logger.warn(
    { err: toolMissing },
    'nfacct counters cannot be made: the INVALID drop and localhost NodePort rules count into none, and kubeproxy_iptables_ct_state_invalid_dropped_packets_total and kubeproxy_iptables_localhost_nodeports_accepted_packets_total are not exported (the nfacct package provides the tool)',
  );
  return null;
}
