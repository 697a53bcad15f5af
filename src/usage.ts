/** `kube-proxy-ts help`, `-h` and `--help` (on any command, as cobra's help flag): every command and flag. */
import { AGENT_FLAGS, RENDER_FLAGS, TOP_FLAGS } from './flag-table.ts';
import { formatFlagHelp } from './flags.ts';

export const USAGE = `Usage:
  kube-proxy-ts [flags]                       run the node agent (--mode iptables, nftables or userspace)
  kube-proxy-ts --cleanup                     remove every kube-proxy rule (any mode, upstream's too) and exit
  kube-proxy-ts --init-only                   set the node's sysctls (conntrack, route_localnet) and exit
  kube-proxy-ts --version                     print the version and exit
  kube-proxy-ts render --objects FILE [flags] print the iptables-restore input for the objects in FILE
  kube-proxy-ts diff [flags]                  compare the desired rules with the live ones; exit 0 when converged
  kube-proxy-ts trace --src IP --dst IP:PORT[/PROTO] [--objects FILE]
                                              run a packet through the live (or rendered) rules
  kube-proxy-ts top [--interval 2s] [--iterations N] [--ip-family IPv4|IPv6]
                                              live packets per second per service endpoint, from the KUBE-SEP counters
                                              (--mode nftables: the agent's totals of its named counters, read through
                                              its /debug/traffic at --metrics-bind-address; --traffic-counters)
  kube-proxy-ts help                          this text

Flags:
${formatFlagHelp(AGENT_FLAGS)}

render only:
${formatFlagHelp(RENDER_FLAGS)}

top only:
${formatFlagHelp(TOP_FLAGS)}
`;
