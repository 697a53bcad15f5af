/**
 * Canary chains detect an outside flush of the tables (firewalld reload,
 * `iptables -F`, a reboot of the rules by another agent): kube-proxy creates
 * an empty KUBE-PROXY-CANARY chain in mangle, nat and filter and polls for the
 * mangle one every sync period; when it is gone, a full resync follows.
 */
import { KUBE_PROXY_CANARY } from './chains.ts';

export const CANARY_TABLES = ['mangle', 'nat', 'filter'] as const;

/** Restore input (for --noflush) that creates the canaries. */
export function canaryRestoreText(): string {
  return CANARY_TABLES.map((t) => `*${t}\n:${KUBE_PROXY_CANARY} - [0:0]\nCOMMIT\n`).join('');
}

/** Whether iptables-save output of a table declares the canary chain. */
export function canaryPresent(saveText: string): boolean {
  return saveText.split('\n').some((l) => l.startsWith(`:${KUBE_PROXY_CANARY} `));
}
