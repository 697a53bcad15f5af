/**
 * What userspace mode needs per service port (pure): its listeners (one for
 * internal traffic, a second for external traffic when the traffic policies
 * select different endpoints) with their endpoints, and the node address that
 * node-originated portal traffic is DNATed to.
 */
import { primaryIPOf } from '../proxier/node-ports.ts';
import { externallyAccessible, type Endpoint, type ServicePortState, type Snapshot } from '../proxier/types.ts';
import type { ListenerSpec } from './listeners.ts';

export interface Role {
  readonly spec: ListenerSpec;
  readonly endpoints: readonly Endpoint[];
}

/** The listeners a service port needs: internal, and external when its endpoints differ. */
export function listenerRoles(s: ServicePortState): Role[] {
  const sp = s.service;
  if (sp.protocol === 'SCTP') return [];
  const id = `${sp.key}/${sp.protocol}/${sp.port}`;
  const protocol = sp.protocol;
  const internal = (sp.internalPolicyLocal ? s.selection.local : s.selection.cluster) ?? [];
  const roles: Role[] = [{ spec: { id, protocol, service: sp.key }, endpoints: internal }];
  if (externallyAccessible(sp) && sp.externalPolicyLocal !== sp.internalPolicyLocal) {
    const external = (sp.externalPolicyLocal ? s.selection.local : s.selection.cluster) ?? [];
    roles.push({ spec: { id: `${id}#external`, protocol, service: sp.key }, endpoints: external });
  }
  return roles;
}

/**
 * The DNAT target of host portals: the node's primary IP of the snapshot's family, else its first address of that
 * family, as long as this host has it (the sync's interface addresses, when read); null otherwise. Upstream's hostIP is
 * an interface's address (ChooseHostInterface): a Node address no interface has (a NATed one) would send the node's
 * own portal traffic off the node.
 */
export function hostIPOf(snapshot: Snapshot): string | null {
  const ip = primaryIPOf(snapshot.node, snapshot.family);
  if (ip === null) return null;
  return snapshot.hostAddresses === undefined || snapshot.hostAddresses.includes(ip) ? ip : null;
}
