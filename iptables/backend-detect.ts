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

const countRules = (text: string): number => text.split('\n').filter((l) => l.startsWith('-')).length;

export async function detectBackend(o: DetectOptions): Promise<Detection> {
  const mangle = (await save(o, 'iptables-nft-save', ['-t', 'mangle'])) + (await save(o, 'ip6tables-nft-save', ['-t', 'mangle']));
  if (/^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m.test(mangle)) return { backend: 'nft', reason: 'kubelet hint chain found in the nft mangle table' };
  const legacy = countRules((await save(o, 'iptables-legacy-save', [])) + (await save(o, 'ip6tables-legacy-save', [])));
  const nft = countRules((await save(o, 'iptables-nft-save', [])) + (await save(o, 'ip6tables-nft-save', [])));
  if (legacy > nft) return { backend: 'legacy', reason: `legacy tables hold more rules (${legacy} vs ${nft})` };
  if (nft > 0) return { backend: 'nft', reason: `nft tables hold more rules (${nft} vs ${legacy})` };
  return { backend: 'nft', reason: 'no rules in either backend: nft by default' };
}
