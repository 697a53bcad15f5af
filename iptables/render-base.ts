/**
 * The fixed rules written on every sync whatever the services: masquerading
 * (KUBE-POSTROUTING, KUBE-MARK-MASQ), forwarding (KUBE-FORWARD), the
 * localhost guard (KUBE-FIREWALL) and the jump rules from the built-in chains.
 */
import { JUMP_RULES, KUBELET_JUMP_RULES } from './chains.ts';
import { jumpChains } from './jumps.ts';
import type { Chain } from './ruleset.ts';
import { CT_STATE_INVALID_DROPPED } from './nfacct.ts';

/** Upstream formats the mark with Go's %#08x: 1<<14 -> "0x00004000". */
export function masqueradeMark(bit: number): string {
  return `0x${(2 ** bit).toString(16).padStart(8, '0')}`;
}

/** KUBE-POSTROUTING: masquerade what carries the mark. */
export function postroutingRules(mark: string, randomFully: boolean): string[] {
  return [
    `-m mark ! --mark ${mark}/${mark} -j RETURN`,
    // Clear the bit so a packet re-entering the stack is not masqueraded twice.
    `-j MARK --xor-mark ${mark}`,
    `-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${randomFully ? ' --random-fully' : ''}`,
  ];
}

/** KUBE-MARK-MASQ: set the mark. */
export function markMasqRules(mark: string): string[] {
  return [`-j MARK --or-mark ${mark}`];
}

/** countInvalid: the ct_state_invalid_dropped_pkts nfacct counter exists, and the INVALID drop counts into it. */
export function forwardRules(mark: string, conntrackTCPLiberal: boolean, countInvalid = false): string[] {
  const rules: string[] = [];
  // Spurious RSTs from out-of-window packets (kubernetes#74839) unless the kernel is liberal.
  if (!conntrackTCPLiberal)
    rules.push(`-m conntrack --ctstate INVALID ${countInvalid ? `-m nfacct --nfacct-name ${CT_STATE_INVALID_DROPPED} ` : ''}-j DROP`);
  // Lets NodePort traffic through even when the FORWARD policy is DROP.
  rules.push(`-m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`);
  rules.push('-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  return rules;
}

/** Duplicate of kubelet's martian guard, needed when localhost NodePorts set route_localnet. */
export const LOCALHOST_GUARD_RULE =
  '-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP';

/** The iptables mode's jump rules of one table, in their built-in chains (with kubelet's KUBE-FIREWALL jumps when it writes that chain). */
export function builtinChains(table: 'filter' | 'nat', withKubeletFirewall: boolean): Chain[] {
  return jumpChains([...JUMP_RULES, ...(withKubeletFirewall ? KUBELET_JUMP_RULES : [])], table);
}
