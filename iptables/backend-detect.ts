/**
 * Which iptables backend the node already uses, as upstream's
 * iptables-wrapper decides: rules from the wrong backend are invisible to,
 * and ordered independently from, the host's own rules.
 * 1. kubelet's hint chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) in the
 *    nft mangle table -> nft;
 * 2. otherwise whichever backend holds more rules;
 * 3. otherwise nft (the default of current distributions).
 */
import type { CommandRunner } from '../proxier/exec.ts';
import type { IptablesBackend } from './iptables.ts';
import { scanSave } from './parse-save.ts';

export interface DetectOptions {
  readonly runner: CommandRunner;
}

export interface Detection {
  readonly backend: IptablesBackend;
  readonly reason: string;
}

async function save(o: DetectOptions, bin: string, args: string[]): Promise<string> {
  try {
    const r = await o.runner.run(bin, args, { timeoutMs: 10_000 });
    return r.code === 0 ? r.stdout : '';
  } catch {
    return '';
  }
}

/** Rules of one backend, both families; and whether kubelet's hint chains are in its mangle tables. */
async function look(o: DetectOptions, backend: IptablesBackend, tables: string[]): Promise<{ rules: number; hint: boolean }> {
  let rules = 0;
  let hint = false;
  for (const [family, bin] of [
    ['IPv4', 'iptables'],
    ['IPv6', 'ip6tables'],
  ] as const) {
    const scan = scanSave(await save(o, `${bin}-${backend}-save`, tables), family);
    rules += scan.ruleCount;
    hint ||= (scan.chains.get('mangle') ?? []).some((c) => HINT_CHAINS.includes(c));
  }
  return { rules, hint };
}

const HINT_CHAINS = ['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY'];

export async function detectBackend(o: DetectOptions): Promise<Detection> {
  if ((await look(o, 'nft', ['-t', 'mangle'])).hint) return { backend: 'nft', reason: 'kubelet hint chain found in the nft mangle table' };
  const legacy = (await look(o, 'legacy', [])).rules;
  const nft = (await look(o, 'nft', [])).rules;
  if (legacy > nft) return { backend: 'legacy', reason: `legacy tables hold more rules (${legacy} vs ${nft})` };
  if (nft > 0) return { backend: 'nft', reason: `nft tables hold more rules (${nft} vs ${legacy})` };
  return { backend: 'nft', reason: 'no rules in either backend: nft by default' };
}
