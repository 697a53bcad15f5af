/**
 * The nftables mode's desired state from parsed objects and the effective
 * configuration: both families' renders (upstream's nftables proxier runs an
 * `ip` and an `ip6` table on every node, services or not), the path shared by
 * `render`, `diff` and `trace` with --mode=nftables.
 */
import { renderNftables, type NftRender, type NftRenderOptions } from '../nftables/render.ts';
import type { IPFamily } from '../proxier/types.ts';
import type { ProxyConfig } from './config.ts';
import { detectLocalFrom, snapshotsFromObjects, type DesiredSnapshots } from './desired.ts';
import type { ParsedObjects } from './sources/parse-objects.ts';

export const NFT_FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];

/** The settings both modes share (mark bit, masquerade-all, local detection, NodePort addresses) in the nftables renderer's terms. */
export function nftRenderOptionsFrom(config: ProxyConfig): NftRenderOptions {
  return {
    masqueradeBit: config.masqueradeBit,
    masqueradeAll: config.masqueradeAll,
    detectLocal: detectLocalFrom(config),
    nodePortAddresses: config.nodePortAddresses,
    ...(config.trafficCounters ? { trafficCounters: true } : {}),
  };
}

export interface NftDesired extends DesiredSnapshots {
  /** One per family, IPv4 first. */
  readonly renders: readonly NftRender[];
}

export function nftDesiredFromObjects(
  objects: ParsedObjects,
  config: ProxyConfig,
  extra: { readonly osHostname?: () => string; readonly hostAddresses?: readonly string[] } = {},
): NftDesired {
  const built = snapshotsFromObjects(objects, config, { ...extra, families: NFT_FAMILIES });
  const options = nftRenderOptionsFrom(config);
  return { ...built, renders: built.snapshots.map((s) => renderNftables(s, options)) };
}
