/**
 * Canary chains detect an outside flush of the tables (firewalld reload,
 * `iptables -F`, a reboot of the rules by another agent): kube-proxy creates
 * an empty KUBE-PROXY-CANARY chain in mangle, nat and filter and polls for the
 * mangle one every sync period; when it is gone, a full resync follows.
 */
import type { IPFamily } from '../proxier/types.ts';
import { fixedChain, KUBE_PROXY_CANARY } from './chains.ts';
import { scanSave } from './parse-save.ts';
import { restoreText } from './restore-text.ts';

/** Restore input (for --noflush) that creates the canaries. */
export function canaryRestoreText(): string {
  return restoreText((fixedChain(KUBE_PROXY_CANARY)?.tables ?? []).map((table) => ({ table, emptied: [KUBE_PROXY_CANARY] })));
}

/** Whether iptables-save output of the mangle table declares the canary chain. */
export function canaryPresent(saveText: string, family: IPFamily): boolean {
  return scanSave(saveText, family).chains.get('mangle')?.includes(KUBE_PROXY_CANARY) ?? false;
}
