/**
 * One rule applied to one traced packet: matches, verdict-map lookups,
 * numgen (forking one run per endpoint, each with its probability), mark
 * arithmetic, reject, masquerade and DNAT. The tracer (trace.ts) walks the
 * chains and applies what this returns.
 */
import type { Rule, Verdict } from './rule-ast.ts';
import { canonicalAddress, fieldValue, lookup, valueMatches, type EvalContext, type PacketState } from './trace-eval.ts';

/** One rule a traced packet matched. */
export interface TraceStep {
  readonly chain: string;
  /** 1-based rule number in the chain. */
  readonly index: number;
  readonly rule: string;
}

/** One branch of a trace while it runs (mutated in place; cloned at forks). */
export interface Run {
  probability: number;
  pkt: PacketState;
  steps: TraceStep[];
  dnat: { ip: string; port: number } | null;
  masquerade: boolean;
  verdict: 'DROP' | 'REJECT' | null;
  /** What decided a DROP or REJECT. */
  end: string;
  /** Where the DNAT and the masquerade happened, for an accepted branch's summary. */
  dnatAt: string;
  masqueradeAt: string;
}

export const clone = (r: Run): Run => ({ ...r, pkt: { ...r.pkt }, steps: [...r.steps] });

export type Outcome =
  | { kind: 'nomatch' | 'continue' | 'final'; forks: { run: Run; verdict: Verdict }[] }
  | { kind: 'verdict'; verdict: Verdict; forks: { run: Run; verdict: Verdict }[] };

export function applyRule(r: Rule, run: Run, step: TraceStep, ctx: EvalContext): Outcome {
  const forks: { run: Run; verdict: Verdict }[] = [];
  for (const s of r.stmts) {
    switch (s.k) {
      case 'match': {
        const v = fieldValue(s.left, run.pkt, ctx);
        // A field the packet does not have (ip6 daddr of an IPv4 packet) matches neither == nor !=.
        if (v === null || valueMatches(s.left, s.right, v, ctx) !== (s.op === '==')) return { kind: 'nomatch', forks };
        break;
      }
      case 'vmap': {
        if (typeof s.map === 'string') {
          const e = lookup(s.map, s.key, fieldValue(s.key, run.pkt, ctx), ctx);
          if (e === null || e.value === null) return { kind: 'nomatch', forks };
          return { kind: 'verdict', verdict: parseVerdict(e.value), forks };
        }
        if (s.key.k !== 'numgen') {
          const v = String(fieldValue(s.key, run.pkt, ctx));
          const hit = s.map.find(([k]) => k === v);
          return hit ? { kind: 'verdict', verdict: hit[1], forks } : { kind: 'nomatch', forks };
        }
        // numgen: every index is equally likely; this run takes the first, forks take the others.
        const mod = s.key.mod;
        const p = 1 / mod;
        const hits = s.map.filter(([k]) => Number(k) >= 0 && Number(k) < mod);
        if (hits.length < mod) ctx.warn(`${step.chain} rule ${step.index}: numgen mod ${mod} has ${hits.length} entries`);
        const base = clone(run);
        for (const [, v] of hits.slice(1)) {
          const f = clone(base);
          f.probability *= p;
          f.steps.push(step);
          forks.push({ run: f, verdict: v });
        }
        if (hits.length === 0) return { kind: 'nomatch', forks };
        run.probability *= p;
        return { kind: 'verdict', verdict: hits[0]![1], forks };
      }
      case 'verdict':
        return { kind: 'verdict', verdict: s.verdict, forks };
      case 'reject':
        run.verdict = 'REJECT';
        run.end = `${step.chain} rule ${step.index}: reject`;
        return { kind: 'final', forks };
      case 'mark':
        run.pkt.mark = typeof s.value === 'number' ? s.value : Number(fieldValue(s.value, run.pkt, ctx) ?? run.pkt.mark);
        break;
      case 'masquerade':
        run.masquerade = true;
        run.masqueradeAt = `${step.chain} rule ${step.index}`;
        return { kind: 'final', forks };
      case 'dnat':
        run.dnat = { ip: canonicalAddress(s.addr), port: s.port ?? run.pkt.dport };
        run.pkt.dst = run.dnat.ip;
        run.pkt.dport = run.dnat.port;
        run.dnatAt = `${step.chain} rule ${step.index}`;
        return { kind: 'final', forks };
      case 'setupdate':
      case 'counter':
        break;
      case 'raw':
        ctx.warn(`${step.chain} rule ${step.index}: statement not understood: ${s.text}`);
        return { kind: 'nomatch', forks };
    }
  }
  return { kind: 'continue', forks };
}

export function parseVerdict(text: string): Verdict {
  const m = /^(jump|goto) (\S+)$/.exec(text);
  if (m) return { k: m[1] as 'jump' | 'goto', target: m[2]! };
  if (text === 'accept' || text === 'drop' || text === 'return' || text === 'continue') return { k: text };
  return { k: 'drop' };
}
