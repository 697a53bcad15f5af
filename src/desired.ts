/**
 * From parsed objects and the effective configuration to the desired
 * rulesets of every IP family: the path shared by `render`, `diff`, `trace`
 * and the agent's first sync.
 */
import { hostname } from 'node:os';
import type { DetectLocalSettings } from '../iptables/local-detector.ts';
import { renderRuleset, type RenderOptions, type RenderResult } from '../iptables/render.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { metadataOf } from '../proxier/raw.ts';
import type { TopologyFeatures } from '../proxier/topology.ts';
import type { IPFamily, ObjectProblem, Snapshot } from '../proxier/types.ts';
import type { ProxyConfig } from './config.ts';
import { featureEnabled } from './feature-gates.ts';
import type { ParsedObjects } from './sources/parse-objects.ts';

/** Upstream's GetHostname: --hostname-override, else the OS hostname, blanks trimmed, lower-cased. */
export function nodeNameFor(config: Pick<ProxyConfig, 'hostnameOverride'>, osHostname: () => string = hostname): string {
  return (config.hostnameOverride.trim() || osHostname().trim()).toLowerCase();
}

/**
 * Whether ServiceCIDR objects are watched: in the nftables mode (the only one that uses them) unless the
 * MultiCIDRServiceAllocator gate is off, as upstream (server.go creates the informer when the gate is on).
 */
export function watchesServiceCIDRs(config: Pick<ProxyConfig, 'mode' | 'featureGates'>): boolean {
  return config.mode === 'nftables' && featureEnabled(config.featureGates, 'MultiCIDRServiceAllocator');
}

/**
 * What a node whose Node object is missing loses, in the words of a mode (render and the agent warn with it; upstream
 * logs "Failed to retrieve node info" and "Can't determine this node's IP").
 */
export function missingNodeEffect(mode: 'iptables' | 'nftables' | 'userspace'): string {
  const nodePorts =
    mode === 'nftables'
      ? 'no primary IP, so NodePorts match every local address but loopback'
      : mode === 'userspace'
        ? "node-originated portal traffic goes to an interface's address"
        : 'NodePorts match LOCAL addresses only';
  return `no node addresses, ${nodePorts}; no zone, so topology hints are ignored`;
}

/** The warning about a missing Node (`where`: "in FILE", "among the Nodes", ...), as the agent and the commands give it. */
export function missingNodeMessage(name: string, where: string, mode: 'iptables' | 'nftables' | 'userspace'): string {
  return `no Node object named "${name}" ${where}: ${missingNodeEffect(mode)}`;
}

export function featuresFrom(config: Pick<ProxyConfig, 'featureGates'>): TopologyFeatures {
  return {
    preferSameTrafficDistribution: featureEnabled(config.featureGates, 'PreferSameTrafficDistribution'),
    allowServiceExternalIPs: featureEnabled(config.featureGates, 'AllowServiceExternalIPs'),
  };
}

/** --detect-local-mode and its inputs, as every mode's renderer takes them. */
export function detectLocalFrom(config: ProxyConfig): DetectLocalSettings {
  return {
    mode: config.detectLocalMode,
    clusterCIDRs: config.clusterCIDRs,
    bridgeInterface: config.bridgeInterface,
    interfaceNamePrefix: config.interfaceNamePrefix,
  };
}

export function renderOptionsFrom(config: ProxyConfig, extra: { randomFully: boolean }): RenderOptions {
  return {
    masqueradeBit: config.masqueradeBit,
    masqueradeAll: config.masqueradeAll,
    detectLocal: detectLocalFrom(config),
    nodePortAddresses: config.nodePortAddresses,
    localhostNodePorts: config.localhostNodePorts,
    randomFully: extra.randomFully,
    conntrackTCPLiberal: config.conntrackTCPBeLiberal,
  };
}

/** The objects as per-family snapshots for this node, whatever the mode renders from them. */
export interface DesiredSnapshots {
  readonly nodeName: string;
  readonly snapshots: readonly Snapshot[];
  readonly problems: readonly ObjectProblem[];
  /** Set when no Node object named nodeName was among the objects. */
  readonly nodeMissing: boolean;
}

export interface Desired extends DesiredSnapshots {
  readonly renders: readonly RenderResult[];
}

export interface SnapshotExtra {
  readonly osHostname?: () => string;
  /** Exactly these families (default: the primary one, plus the other when a service has it). */
  readonly families?: readonly IPFamily[];
  /** This host's interface addresses (`diff` on the node), as the agent's snapshots carry them; else the Node's stand in. */
  readonly hostAddresses?: readonly string[];
}

export interface DesiredExtra extends SnapshotExtra {
  readonly randomFully: boolean;
  /** nf_conntrack_tcp_be_liberal is set on the node (no INVALID drop rule). */
  readonly conntrackLiberal?: boolean;
  /** The nfacct counters on the node, which the agent's rules count into (iptables/nfacct.ts). */
  readonly nfacctCounters?: ReadonlySet<string>;
}

export function snapshotsFromObjects(objects: ParsedObjects, config: ProxyConfig, extra: SnapshotExtra): DesiredSnapshots {
  const nodeName = nodeNameFor(config, extra.osHostname);
  const node = objects.nodes.find((n) => metadataOf(n).name.toLowerCase() === nodeName) ?? null;
  const built = buildSnapshots(
    { services: objects.services, slices: objects.slices, node, serviceCIDRs: objects.serviceCIDRs ?? [] },
    { nodeName, features: featuresFrom(config), bindAddress: config.bindAddress, ...(extra.families ? { families: extra.families } : {}) },
  );
  const host = extra.hostAddresses;
  const snapshots = host ? built.snapshots.map((s) => ({ ...s, hostAddresses: host })) : built.snapshots;
  return { nodeName, snapshots, problems: [...objects.problems, ...built.problems], nodeMissing: node === null };
}

export function desiredFromObjects(objects: ParsedObjects, config: ProxyConfig, extra: DesiredExtra): Desired {
  const built = snapshotsFromObjects(objects, config, extra);
  const options = {
    ...renderOptionsFrom(config, extra),
    conntrackTCPLiberal: config.conntrackTCPBeLiberal || extra.conntrackLiberal === true,
    ...(extra.nfacctCounters ? { nfacctCounters: extra.nfacctCounters } : {}),
  };
  return { ...built, renders: built.snapshots.map((s) => renderRuleset(s, options)) };
}
