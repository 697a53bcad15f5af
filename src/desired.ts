/**
 * From parsed objects and the effective configuration to the desired
 * rulesets of every IP family: the path shared by `render`, `diff`, `trace`
 * and the agent's first sync.
 */
import { hostname } from 'node:os';
import { renderRuleset, type RenderOptions, type RenderResult } from '../iptables/render.ts';
import { buildSnapshots } from '../proxier/snapshot.ts';
import { metadataOf } from '../proxier/raw.ts';
import type { TopologyFeatures } from '../proxier/topology.ts';
import type { IPFamily, ObjectProblem, Snapshot } from '../proxier/types.ts';
import type { ProxyConfig } from './config.ts';
import type { ParsedObjects } from './sources/parse-objects.ts';

/** Upstream: --hostname-override, else the OS hostname, lower-cased. */
export function nodeNameFor(config: Pick<ProxyConfig, 'hostnameOverride'>, osHostname: () => string = hostname): string {
  return (config.hostnameOverride.trim() || osHostname()).toLowerCase();
}

export function featuresFrom(config: Pick<ProxyConfig, 'featureGates'>): TopologyFeatures {
  return { preferSameTrafficDistribution: config.featureGates['PreferSameTrafficDistribution'] ?? true };
}

export function renderOptionsFrom(config: ProxyConfig, extra: { randomFully: boolean }): RenderOptions {
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
    localhostNodePorts: config.localhostNodePorts,
    randomFully: extra.randomFully,
    conntrackTCPLiberal: config.conntrackTCPBeLiberal,
  };
}

export interface Desired {
  readonly nodeName: string;
  readonly snapshots: readonly Snapshot[];
  readonly renders: readonly RenderResult[];
  readonly problems: readonly ObjectProblem[];
  /** Set when no Node object named nodeName was among the objects. */
  readonly nodeMissing: boolean;
}

export interface DesiredExtra {
  readonly randomFully: boolean;
  readonly osHostname?: () => string;
  /** Render exactly these families (the agent renders every family whose iptables works). */
  readonly families?: readonly IPFamily[];
  /** nf_conntrack_tcp_be_liberal is set on the node (no INVALID drop rule). */
  readonly conntrackLiberal?: boolean;
}

export function desiredFromObjects(objects: ParsedObjects, config: ProxyConfig, extra: DesiredExtra): Desired {
  const nodeName = nodeNameFor(config, extra.osHostname);
  const node = objects.nodes.find((n) => metadataOf(n).name.toLowerCase() === nodeName) ?? null;
  const built = buildSnapshots(
    { services: objects.services, slices: objects.slices, node },
    { nodeName, features: featuresFrom(config), ...(extra.families ? { families: extra.families } : {}) },
  );
  const options = { ...renderOptionsFrom(config, extra), conntrackTCPLiberal: config.conntrackTCPBeLiberal || extra.conntrackLiberal === true };
  return {
    nodeName,
    snapshots: built.snapshots,
    renders: built.snapshots.map((s) => renderRuleset(s, options)),
    problems: [...objects.problems, ...built.problems],
    nodeMissing: node === null,
  };
}
