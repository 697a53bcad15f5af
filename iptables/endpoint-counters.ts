/**
 * Traffic per endpoint, read from the counters iptables keeps on kube-proxy's
 * rules (`iptables-save -c -t nat`): the DNAT rule of each KUBE-SEP-* chain
 * counts what reached that endpoint, by whichever path (cluster IP, node
 * port, external IP, session affinity, the Local chains). Rules in the nat
 * table see only the first packet of each connection (conntrack NATs the
 * rest), so "packets" are new connections (TCP) or flows (UDP), and "bytes"
 * the bytes of those first packets.
 *
 * The KUBE-SVC/SVL jump counters are not used for the figures: a partial
 * sync rewrites a service's KUBE-SVC chain whenever its endpoints change (the
 * probabilities change), which resets them, while a KUBE-SEP chain is
 * written only by a full sync (its rules depend only on its name's inputs).
 * They serve to find a KUBE-SEP chain's service when its rules carry no
 * comment (upstream leaves comments out above 1,000 endpoints): the service
 * chain that jumps to it, named by the comment of the KUBE-SERVICES or
 * KUBE-NODEPORTS rule that leads to that service's chains.
 *
 * Pure: one linear pass over the text, no regular expression for the lines
 * that are not kube-proxy's endpoint, service or entry rules.
 */
import { isServiceChain, KUBE_NODEPORTS, KUBE_SERVICES, SEP_PREFIX, serviceChainHash } from './chains.ts';

export interface EndpointCounter {
  /** The KUBE-SEP-* chain. */
  readonly chain: string;
  /** The service port ("ns/name:port"), or "" when nothing in the table names it. */
  readonly service: string;
  /** The DNAT destination, "ip:port" ("[ip]:port" for IPv6). */
  readonly endpoint: string;
  readonly packets: number;
  readonly bytes: number;
}

const ENTRY_SUFFIXES = [' cluster IP', ' external IP', ' loadbalancer IP'];

/** The comment text of a rule spec (iptables-save quotes it when it holds blanks or quotes), or null. */
export function ruleComment(rule: string): string | null {
  const m = /--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(rule);
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!;
}

/** The word after the last `option` of a rule spec (which may start with it), or null. */
const wordAfter = (rule: string, option: string): string | null => {
  const at = rule.lastIndexOf(` ${option} `);
  if (at < 0 && !rule.startsWith(`${option} `)) return null;
  const start = at + option.length + 2;
  const end = rule.indexOf(' ', start);
  return rule.slice(start, end < 0 ? rule.length : end);
};

/** Endpoint counters of the nat table in `iptables-save -c` output (other tables and lines without counters are skipped). */
export function readEndpointCounters(saveText: string): EndpointCounter[] {
  const seps = new Map<string, { service: string; endpoint: string; packets: number; bytes: number }>();
  /** KUBE-SEP chain -> the service chain hash that jumps to it. */
  const jumpedFrom = new Map<string, string>();
  /** Service chain hash -> service port name, from the entry rules. */
  const serviceOfHash = new Map<string, string>();
  let inNat = false;
  let pos = 0;
  while (pos < saveText.length) {
    let end = saveText.indexOf('\n', pos);
    if (end < 0) end = saveText.length;
    const c = saveText.charCodeAt(pos);
    if (c === 42 /* * */) inNat = saveText.slice(pos + 1, end).trim() === 'nat';
    else if (c === 91 /* [ */ && inNat) {
      const line = saveText.slice(pos, end);
      const close = line.indexOf('] -A ');
      const sep = close < 0 ? -1 : line.indexOf(' ', close + 5);
      if (sep > 0) readRule(line.slice(close + 5, sep), line.slice(sep + 1), line.slice(1, close));
    }
    pos = end + 1;
  }

  function readRule(chain: string, rule: string, counters: string): void {
    if (chain.startsWith(SEP_PREFIX)) {
      if (!rule.includes('-j DNAT')) return;
      const colon = counters.indexOf(':');
      seps.set(chain, {
        service: ruleComment(rule) ?? '',
        endpoint: wordAfter(rule, '--to-destination') ?? '',
        packets: Number(counters.slice(0, colon)),
        bytes: Number(counters.slice(colon + 1)),
      });
      return;
    }
    const target = wordAfter(rule, '-j') ?? wordAfter(rule, '-g');
    if (target === null || !isServiceChain(target)) return;
    if (target.startsWith(SEP_PREFIX)) {
      const hash = serviceChainHash(chain);
      if (hash !== null) jumpedFrom.set(target, hash);
    } else if (chain === KUBE_SERVICES || chain === KUBE_NODEPORTS) {
      const comment = ruleComment(rule);
      const hash = serviceChainHash(target);
      if (comment === null || hash === null || serviceOfHash.has(hash)) return;
      const suffix = ENTRY_SUFFIXES.find((s) => comment.endsWith(s));
      serviceOfHash.set(hash, suffix ? comment.slice(0, -suffix.length) : comment);
    }
  }

  const out: EndpointCounter[] = [];
  for (const [chain, s] of seps) {
    const service = s.service || serviceOfHash.get(jumpedFrom.get(chain) ?? '') || '';
    out.push({ chain, service, endpoint: s.endpoint, packets: s.packets, bytes: s.bytes });
  }
  return out;
}
