/**
 * A flow scenario -> the nftables table that scenario's flags would make: the
 * snapshots come through the same path as `kube-proxy-ts render`
 * (flow-runner.ts desiredFor); the options are mapped from the effective
 * configuration here until the mode is wired into src/ (then this mapping
 * moves next to renderOptionsFrom in src/desired.ts).
 */
import type { ProxyConfig } from '../src/config.ts';
import { configFromFlags } from '../src/config.ts';
import type { FlagValue } from '../src/flags.ts';
import { planFullSync } from '../nftables/full-sync.ts';
import type { NftTable } from '../nftables/model.ts';
import { renderNftables, tableOf, type NftRender, type NftRenderOptions } from '../nftables/render.ts';
import { BASE_FLAGS } from './flow-cases.case.ts';
import { desiredFor } from './flow-runner.ts';
import type { NftScenario } from './nft-flow-cases.case.ts';

export function nftOptionsFrom(config: ProxyConfig, serviceCIDRs: readonly string[] = []): NftRenderOptions {
  return {
    masqueradeBit: config.masqueradeBit,
    masqueradeAll: config.masqueradeAll,
    detectLocal: {
      mode: config.detectLocalMode,
      clusterCIDRs: config.clusterCIDRs,
      bridgeInterface: config.bridgeInterface,
      interfaceNamePrefix: config.interfaceNamePrefix,
    },
    nodePortAddresses: config.nodePortAddresses,
    serviceCIDRs,
  };
}

export interface NftDesired {
  readonly render: NftRender;
  readonly table: NftTable;
  /** `nft -f` input of a full sync on a fresh node. */
  readonly text: string;
  readonly problems: readonly unknown[];
}

export function nftDesiredFor(scenario: NftScenario): NftDesired {
  const flags = new Map<string, FlagValue>(Object.entries({ ...BASE_FLAGS, ...scenario.flags }) as [string, FlagValue][]);
  const desired = desiredFor({ ...scenario, flows: [] });
  const family = scenario.family ?? 'IPv4';
  const snapshot = desired.snapshots.find((s) => s.family === family);
  if (!snapshot) throw new Error(`scenario ${scenario.name} has no ${family} snapshot`);
  const render = renderNftables(snapshot, nftOptionsFrom(configFromFlags(flags), scenario.serviceCIDRs));
  return {
    render,
    table: tableOf(render),
    text: planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text,
    problems: [...desired.problems, ...render.warnings],
  };
}
