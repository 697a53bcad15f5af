/**
 * Local-traffic detection (--detect-local-mode): the match arguments that say
 * "this packet comes from a pod on this cluster/node" and their negation.
 * A detector without the input it needs is a no-op, as upstream: no ClusterIP
 * masquerade rule and no pod short-circuit for externalTrafficPolicy Local.
 */
import { parseCIDR } from '../proxier/ip.ts';
import type { IPFamily, NodeInfo } from '../proxier/types.ts';

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
export const DETECT_LOCAL_MODES: readonly DetectLocalMode[] = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'];

export interface LocalDetector {
  /** Match args for "from a local pod", or null when detection is not implemented. */
  readonly ifLocal: readonly string[] | null;
  /** Match args for "not from a local pod", or null when detection is not implemented. */
  readonly ifNotLocal: readonly string[] | null;
  /** Human-readable description for logs, e.g. "ClusterCIDR 10.0.0.0/8" or "none: no --cluster-cidr for IPv6". */
  readonly description: string;
}

export interface DetectLocalSettings {
  readonly mode: DetectLocalMode;
  /** --cluster-cidr values (any families). */
  readonly clusterCIDRs: readonly string[];
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
}

export const NO_LOCAL_DETECTOR: LocalDetector = { ifLocal: null, ifNotLocal: null, description: 'none' };

function cidrDetector(mode: string, cidr: string): LocalDetector {
  return { ifLocal: ['-s', cidr], ifNotLocal: ['!', '-s', cidr], description: `${mode} ${cidr}` };
}

function ifaceDetector(mode: string, name: string): LocalDetector {
  return { ifLocal: ['-i', name], ifNotLocal: ['!', '-i', name], description: `${mode} ${name}` };
}

function firstOfFamily(cidrs: readonly string[], family: IPFamily): string | null {
  for (const c of cidrs) {
    const parsed = parseCIDR(c);
    if (parsed?.family === family) return parsed.text;
  }
  return null;
}

/** The detector for one IP family, given the settings and (for NodeCIDR) the node. */
export function makeLocalDetector(settings: DetectLocalSettings, family: IPFamily, node: NodeInfo): LocalDetector {
  switch (settings.mode) {
    case 'ClusterCIDR': {
      const cidr = firstOfFamily(settings.clusterCIDRs, family);
      return cidr ? cidrDetector('ClusterCIDR', cidr) : { ...NO_LOCAL_DETECTOR, description: `none: no --cluster-cidr for ${family}` };
    }
    case 'NodeCIDR': {
      const cidr = firstOfFamily(node.podCIDRs, family);
      return cidr ? cidrDetector('NodeCIDR', cidr) : { ...NO_LOCAL_DETECTOR, description: `none: node has no ${family} podCIDR` };
    }
    case 'BridgeInterface':
      return settings.bridgeInterface
        ? ifaceDetector('BridgeInterface', settings.bridgeInterface)
        : { ...NO_LOCAL_DETECTOR, description: 'none: no --pod-bridge-interface' };
    case 'InterfaceNamePrefix':
      return settings.interfaceNamePrefix
        ? ifaceDetector('InterfaceNamePrefix', `${settings.interfaceNamePrefix}+`)
        : { ...NO_LOCAL_DETECTOR, description: 'none: no --pod-interface-name-prefix' };
  }
}
