/**
 * This host's interface addresses, as the agent and `diff` read them: where
 * --nodeport-addresses puts the NodePorts (upstream's
 * NodePortAddresses.GetNodeIPs lists net.InterfaceAddrs).
 */
import { networkInterfaces } from 'node:os';

/**
 * Every address on this host's interfaces, IPv6 zone ids dropped. Node's list (libuv's uv_interface_addresses) leaves
 * out interfaces that are not up and running, where Go's lists every address: one on an interface without carrier (a
 * NIC without link, a bridge without ports) is still local, and upstream's NodePort jump for it would catch traffic
 * reaching it through another interface; here it has none until the link comes up.
 */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address.replace(/%.*$/, '')));
}
