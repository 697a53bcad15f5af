/**
 * What a matched rule's target does to a traced packet: jumps and gotos
 * (with a depth limit), RETURN, the verdicts, DNAT/REDIRECT rewriting the
 * destination, MASQUERADE/SNAT, MARK arithmetic, and raw's CT --notrack. Targets that do not
 * change the packet's fate (LOG, a rule without target) let it continue.
 */
import { parseNumber } from './rule-normalize.ts';
import type { RuleWords } from './rule-words.ts';
import type { TraceVerdict } from '../proxier/trace-result.ts';
import type { PacketState } from './trace-match.ts';

/** One rule a traced packet matched. */
export interface TraceStep {
  readonly table: string;
  readonly chain: string;
  /** 1-based rule number in the chain. */
  readonly index: number;
  readonly rule: string;
}

export interface Frame {
  readonly chain: string;
  /** Next rule to evaluate (0-based). */
  readonly index: number;
  /** The hook's built-in chain (or what a goto from it replaced): falling off applies the policy. */
  readonly base: boolean;
}

/** One branch of the trace while it runs (mutated in place; cloned at forks). */
export interface Run {
  probability: number;
  pkt: PacketState;
  steps: readonly TraceStep[];
  stack: readonly Frame[];
  dnat: { readonly ip: string; readonly port: number } | null;
  redirected: boolean;
  masquerade: boolean;
  /** DROP/REJECT once decided; null while accepted so far. */
  verdict: TraceVerdict | null;
  end: string;
  readonly budget: { used: number };
}

export interface TargetEnv {
  readonly table: string;
  readonly hook: string;
  /** "nat KUBE-SEP-X rule 2", for messages. */
  readonly where: string;
  readonly maxDepth: number;
  readonly localAddresses: readonly string[];
  /** The packet already carries its connection (a locally generated packet back in through lo): CT --notrack is a no-op. */
  readonly ctAttached: boolean;
  /** Whether `name` is a user chain of the table. */
  readonly isChain: (name: string) => boolean;
  readonly warn: (m: string) => void;
}

const NO_OPS = new Set(['LOG', 'NFLOG', 'TRACE', 'AUDIT']);

/** "ip", "ip:port", "ip-ip:p1-p2", "[v6]:port" -> first address and port (null: keep the port). */
function natDestination(v: string, env: TargetEnv): { ip: string; port: number | null } {
  let ip: string;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.+))?$/.exec(v);
  if (bracket) [ip, port] = [bracket[1]!, bracket[2]];
  else if (v.includes('.')) [ip, port] = v.split(':') as [string, string | undefined];
  else ip = v;
  if (ip.includes('-') || port?.includes('-')) env.warn(`${env.where}: address or port range ${v}: the first one is traced`);
  const first = ip.split('-')[0]!;
  return { ip: first, port: port === undefined ? null : Number(port.split('-')[0]) };
}

function markAfter(mark: number, o: { name: string; values: readonly string[] }): number | null {
  const [v, m] = (o.values[0] ?? '').split('/');
  const value = parseNumber(v ?? '');
  const mask = m === undefined ? null : parseNumber(m);
  if (value === null) return null;
  switch (o.name) {
    case '--set-xmark':
      return ((mark & ~(mask ?? 0xffffffff)) ^ value) >>> 0;
    case '--set-mark':
      return ((mark & ~(mask ?? 0xffffffff)) | value) >>> 0;
    case '--or-mark':
      return (mark | value) >>> 0;
    case '--and-mark':
      return (mark & value) >>> 0;
    case '--xor-mark':
      return (mark ^ value) >>> 0;
    default:
      return null;
  }
}

/** Applies the target of a matched rule; 'stop' ends the hook's traversal for this run. */
export function applyTarget(run: Run, words: RuleWords, env: TargetEnv): 'continue' | 'stop' {
  const t = words.target;
  if (t === null || NO_OPS.has(t)) return 'continue';
  const arg = (name: string): string | undefined => words.targetArgs.find((o) => o.name === name)?.values[0];
  const stop = (verdict: TraceVerdict | null, what: string): 'stop' => {
    run.verdict = verdict;
    run.end = `${env.where}: ${what}`;
    return 'stop';
  };
  if (env.isChain(t)) {
    if (run.stack.length >= env.maxDepth) {
      env.warn(`${env.where}: jump to ${t} exceeds ${env.maxDepth} nested chains (jump loop?); traced as DROP`);
      return stop('DROP', `too many nested chains at ${t}`);
    }
    const top = run.stack[run.stack.length - 1]!;
    run.stack = words.goto
      ? [...run.stack.slice(0, -1), { chain: t, index: 0, base: top.base }]
      : [...run.stack, { chain: t, index: 0, base: false }];
    return 'continue';
  }
  switch (t) {
    case 'RETURN': {
      // Falls off the current chain: the hook loop pops it (and applies the policy on the base chain).
      const top = run.stack[run.stack.length - 1]!;
      run.stack = [...run.stack.slice(0, -1), { ...top, index: Number.POSITIVE_INFINITY }];
      return 'continue';
    }
    case 'ACCEPT':
      return stop(null, 'ACCEPT');
    case 'DROP':
    case 'REJECT':
      return stop(t, t);
    case 'DNAT': {
      const to = arg('--to-destination');
      if (to === undefined) return stop(null, 'DNAT without --to-destination');
      const d = natDestination(to, env);
      const port = d.port ?? run.pkt.dport;
      run.pkt = { ...run.pkt, dst: d.ip, dport: port, dnatted: true };
      run.dnat = { ip: d.ip, port };
      return stop(null, `DNAT to ${to}`);
    }
    case 'REDIRECT': {
      const v6 = run.pkt.dst.includes(':');
      const loopback = v6 ? '::1' : '127.0.0.1';
      const ip = env.hook === 'OUTPUT' ? loopback : (env.localAddresses.find((a) => a.includes(':') === v6) ?? loopback);
      const ports = arg('--to-ports');
      const port = ports === undefined ? run.pkt.dport : Number(ports.split('-')[0]);
      run.pkt = { ...run.pkt, dst: ip, dport: port, dnatted: true };
      run.dnat = { ip, port };
      run.redirected = true;
      return stop(null, `REDIRECT to ${ip}:${port}`);
    }
    case 'MASQUERADE':
    case 'SNAT':
      if (env.hook !== 'POSTROUTING') env.warn(`${env.where}: ${t} outside POSTROUTING`);
      run.masquerade = true;
      return stop(null, t);
    case 'NOTRACK':
    case 'CT': {
      // xt_CT: --notrack on a packet without a connection yet (raw, before conntrack) leaves it untracked; nat never
      // sees it. Zones, helpers, timeouts do not change the first packet's fate.
      const notrack = t === 'NOTRACK' || words.targetArgs.some((o) => o.name === '--notrack');
      if (!notrack) env.warn(`${env.where}: CT without --notrack is not modelled; rule ignored`);
      else if (!env.ctAttached) run.pkt = { ...run.pkt, untracked: true };
      return 'continue';
    }
    case 'MARK': {
      let mark: number | null = run.pkt.mark;
      for (const o of words.targetArgs) mark = mark === null ? null : markAfter(mark, o);
      if (mark === null) env.warn(`${env.where}: MARK arguments not understood; mark unchanged`);
      else run.pkt = { ...run.pkt, mark };
      return 'continue';
    }
    default:
      env.warn(`${env.where}: target ${t} is not modelled (or the chain does not exist); rule ignored`);
      return 'continue';
  }
}
