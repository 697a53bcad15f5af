/**
 * A flow scenario -> the nftables table that scenario's flags would make: the
 * snapshots come through the same path as `kube-proxy-ts render`
 * (flow-runner.ts desiredFor); the options are mapped from the effective
 * configuration as the CLI maps them (src/desired-nft.ts).
 */
import { configFromFlags } from '../src/config.ts';
import type { FlagValue } from '../src/flags.ts';
import { planFullSync } from '../nftables/full-sync.ts';
import type { NftTable } from '../nftables/model.ts';
import { renderNftables, tableOf, type NftRender, type NftRenderOptions } from '../nftables/render.ts';
import { nftRenderOptionsFrom } from '../src/desired-nft.ts';
import { BASE_FLAGS } from './flow-cases.case.ts';
import { desiredFor } from './flow-runner.ts';
import type { NftScenario } from './nft-flow-cases.case.ts';

export interface NftDesired {
  readonly render: NftRender;
  readonly table: NftTable;
  /** `nft -f` input of a full sync on a fresh node. */
  readonly text: string;
  readonly problems: readonly unknown[];
}

/** `over`: render options on top of the ones the scenario's flags give (e.g. `generation`). */
export function nftDesiredFor(scenario: NftScenario, over: Partial<NftRenderOptions> = {}): NftDesired {
  const flags = new Map<string, FlagValue>(Object.entries({ ...BASE_FLAGS, ...scenario.flags }) as [string, FlagValue][]);
  const desired = desiredFor({ ...scenario, flows: [] });
  const family = scenario.family ?? 'IPv4';
  const snapshot = desired.snapshots.find((s) => s.family === family);
  if (!snapshot) throw new Error(`scenario ${scenario.name} has no ${family} snapshot`);
  const render = renderNftables(snapshot, { ...nftRenderOptionsFrom(configFromFlags(flags)), ...over });
  return {
    render,
    table: tableOf(render),
    text: planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text,
    problems: [...desired.problems, ...render.warnings],
  };
}
