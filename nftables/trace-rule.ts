/**
 * One rule applied to one traced packet: matches, verdict-map lookups,
 * numgen (forking one run per endpoint, each with its probability: a vmap to
 * endpoint chains, or generation B's DNAT map), mark arithmetic, reject,
 * masquerade and DNAT. The tracer (trace.ts) walks the chains and applies
 * what this returns.
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
        const picks = numgenPicks(s.key.mod, s.map, run, step, ctx);
        if (picks.length === 0) return { kind: 'nomatch', forks };
        for (const { run: f, value } of picks.slice(1)) forks.push({ run: f, verdict: value });
        return { kind: 'verdict', verdict: picks[0]!.value, forks };
      }
      case 'dnatmap': {
        // Generation B: the map's entry is the endpoint; numgen forks one run per entry, as a numgen vmap does.
        if (s.key.k !== 'numgen') {
          const v = String(fieldValue(s.key, run.pkt, ctx));
          const hit = s.map.find(([k]) => k === v);
          if (!hit) return { kind: 'nomatch', forks };
          dnatTo(run, hit[1].addr, hit[1].port, step);
          return { kind: 'final', forks };
        }
        const picks = numgenPicks(s.key.mod, s.map, run, step, ctx);
        if (picks.length === 0) return { kind: 'nomatch', forks };
        for (const { run: r, value } of picks) dnatTo(r, value.addr, value.port, step);
        // A NAT statement ends the base chain with accept (nft_nat_eval's NF_ACCEPT), in every fork too.
        for (const { run: f } of picks.slice(1)) forks.push({ run: f, verdict: { k: 'accept' } });
        return { kind: 'final', forks };
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
        dnatTo(run, s.addr, s.port ?? run.pkt.dport, step);
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

/**
 * numgen: every index below the modulus is equally likely. The run takes the first entry (its probability scaled by
 * 1/mod), a clone of it, with the rule's step already recorded, each of the others. Empty when no entry is in range.
 */
function numgenPicks<T>(
  mod: number,
  entries: readonly (readonly [string, T])[],
  run: Run,
  step: TraceStep,
  ctx: EvalContext,
): { run: Run; value: T }[] {
  const hits = entries.filter(([k]) => Number(k) >= 0 && Number(k) < mod);
  if (hits.length < mod) ctx.warn(`${step.chain} rule ${step.index}: numgen mod ${mod} has ${hits.length} entries`);
  if (hits.length === 0) return [];
  const base = clone(run);
  const others = hits.slice(1).map(([, value]) => {
    const f = clone(base);
    f.probability *= 1 / mod;
    f.steps.push(step);
    return { run: f, value };
  });
  run.probability *= 1 / mod;
  return [{ run, value: hits[0]![1] }, ...others];
}

function dnatTo(run: Run, addr: string, port: number, step: TraceStep): void {
  run.dnat = { ip: canonicalAddress(addr), port };
  run.pkt.dst = run.dnat.ip;
  run.pkt.dport = port;
  run.pkt.dnatted = true;
  run.dnatAt = `${step.chain} rule ${step.index}`;
}

export function parseVerdict(text: string): Verdict {
  const m = /^(jump|goto) (\S+)$/.exec(text);
  if (m) return { k: m[1] as 'jump' | 'goto', target: m[2]! };
  if (text === 'accept' || text === 'drop' || text === 'return' || text === 'continue') return { k: text };
  return { k: 'drop' };
}
