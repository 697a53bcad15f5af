/**
 * What userspace mode needs per service port (pure): its listeners (one for
 * internal traffic, a second for external traffic when the traffic policies
 * select different endpoints) with their endpoints, and the node address that
 * node-originated portal traffic is DNATed to.
 */
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

/** The node's primary IP of the snapshot's family (DNAT target of host portals), else its first address of that family. */
export function hostIPOf(snapshot: Snapshot): string | null {
  const v6 = snapshot.family === 'IPv6';
  const ofFamily = (ip: string): boolean => ip.includes(':') === v6;
  if (snapshot.node.primaryIP && ofFamily(snapshot.node.primaryIP)) return snapshot.node.primaryIP;
  return snapshot.node.addresses.find(ofFamily) ?? null;
}
