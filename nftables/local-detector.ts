/**
 * Local-traffic detection (--detect-local-mode) in nft syntax: the match that
 * says "from a pod of this cluster/node" and its negation (upstream
 * pkg/proxy/util/localdetector.go, IfLocalNFT / IfNotLocalNFT).
 *
 * The interface modes write `iifname`, as upstream's newer copy does: the
 * 531be812 copy's `iif cbr0` makes nft resolve the name to an index when the
 * rule is loaded ("Error: Interface does not exist" unless the bridge is
 * already up, and the wrong interface after it is re-created), and its
 * `iif cbr*` is rejected outright by nft 1.0.6; `iifname` matches by name and
 * takes a trailing `*` as a prefix wildcard.
 *
 * The settings mirror the iptables mode's (same field names), so one
 * configuration drives both modes.
 */
import { parseCIDR } from '../proxier/ip.ts';
import type { IPFamily, NodeInfo } from '../proxier/types.ts';

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';

export interface DetectLocalSettings {
  readonly mode: DetectLocalMode;
  /** --cluster-cidr values (any families). */
  readonly clusterCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
}

export interface NftLocalDetector {
  /** Statement text for "from a local pod", or null when detection is not implemented. */
  readonly ifLocal: string | null;
  readonly ifNotLocal: string | null;
  /** For logs, e.g. "ClusterCIDR 10.0.0.0/8" or "none: no --cluster-cidr for IPv6". */
  readonly description: string;
}

export const NO_LOCAL_DETECTOR: NftLocalDetector = { ifLocal: null, ifNotLocal: null, description: 'none' };

function firstOfFamily(cidrs: readonly string[], family: IPFamily): string | null {
  for (const c of cidrs) {
    const parsed = parseCIDR(c);
    if (parsed?.family === family) return parsed.text;
  }
  return null;
}

function cidrDetector(mode: string, cidr: string, family: IPFamily): NftLocalDetector {
  const ipX = family === 'IPv4' ? 'ip' : 'ip6';
  return { ifLocal: `${ipX} saddr ${cidr}`, ifNotLocal: `${ipX} saddr != ${cidr}`, description: `${mode} ${cidr}` };
}

function ifaceDetector(mode: string, name: string): NftLocalDetector {
  return { ifLocal: `iifname ${name}`, ifNotLocal: `iifname != ${name}`, description: `${mode} ${name}` };
}

/** Interface names are letters, digits and `._-` (at most 15); anything else would not parse as an nft word. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function makeLocalDetector(settings: DetectLocalSettings | null, family: IPFamily, node: NodeInfo): NftLocalDetector {
  if (settings === null) return NO_LOCAL_DETECTOR;
  switch (settings.mode) {
    case 'ClusterCIDR': {
      const cidr = firstOfFamily(settings.clusterCIDRs, family);
      return cidr ? cidrDetector('ClusterCIDR', cidr, family) : { ...NO_LOCAL_DETECTOR, description: `none: no --cluster-cidr for ${family}` };
    }
    case 'NodeCIDR': {
      const cidr = firstOfFamily(node.podCIDRs, family);
      return cidr ? cidrDetector('NodeCIDR', cidr, family) : { ...NO_LOCAL_DETECTOR, description: `none: node has no ${family} podCIDR` };
    }
    case 'BridgeInterface':
      if (!settings.bridgeInterface) return { ...NO_LOCAL_DETECTOR, description: 'none: no --pod-bridge-interface' };
      if (!IFNAME.test(settings.bridgeInterface)) {
        throw new Error(`--pod-bridge-interface ${JSON.stringify(settings.bridgeInterface)} is not an interface name`);
      }
      return ifaceDetector('BridgeInterface', settings.bridgeInterface);
    case 'InterfaceNamePrefix':
      if (!settings.interfaceNamePrefix) return { ...NO_LOCAL_DETECTOR, description: 'none: no --pod-interface-name-prefix' };
      if (!IFNAME.test(settings.interfaceNamePrefix)) {
        throw new Error(`--pod-interface-name-prefix ${JSON.stringify(settings.interfaceNamePrefix)} is not an interface name prefix`);
      }
      return ifaceDetector('InterfaceNamePrefix', `${settings.interfaceNamePrefix}*`);
  }
}
