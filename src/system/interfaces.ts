/**
 * This host's interfaces and addresses, as the agent and `diff` read them
 * through the command runner (`ip -j addr show`, in the runner's network
 * namespace): where --nodeport-addresses puts the NodePorts (upstream's
 * NodePortAddresses.GetNodeIPs lists net.InterfaceAddrs, every address of
 * every interface). Node's own os.networkInterfaces() is not used: libuv
 * leaves out interfaces that are not up and running, whose addresses Linux
 * still treats as local.
 */
import { interfaceAddressesOf, interfacesFromIpJson, type HostInterface } from '../../proxier/host-interfaces.ts';
import { describeFailure, readProcFile, type CommandRunner } from '../../proxier/exec.ts';
import type { IPFamily } from '../../proxier/types.ts';
import { chooseHostIP, defaultRoutesFromProc } from '../../userspace/host-ip.ts';

const ARGS = ['-j', 'addr', 'show'] as const;

/** The interfaces with their addresses; throws when `ip` fails or says something unreadable (callers keep the last list). */
export async function readInterfaces(runner: CommandRunner): Promise<HostInterface[]> {
  const r = await runner.run('ip', ARGS, { timeoutMs: 5000 });
  if (r.code !== 0) throw new Error(describeFailure('ip', ARGS, r, runner.netns));
  return interfacesFromIpJson(r.stdout);
}

/** Every address on this host's interfaces, in the kernel's order. */
export async function interfaceAddresses(runner: CommandRunner): Promise<string[]> {
  return interfaceAddressesOf(await readInterfaces(runner));
}

/**
 * Upstream's ChooseHostInterface for one family (userspace mode's host IP): the default routes of /proc/net/route and
 * /proc/net/ipv6_route, read in the runner's network namespace, and the interfaces; null when none has a global address.
 */
export async function hostInterfaceIP(runner: CommandRunner, family: IPFamily): Promise<string | null> {
  const [interfaces, v4, v6] = await Promise.all([
    readInterfaces(runner),
    readProcFile(runner, '/proc/net/route'),
    readProcFile(runner, '/proc/net/ipv6_route'),
  ]);
  return chooseHostIP(interfaces, defaultRoutesFromProc(v4, v6), family);
}
