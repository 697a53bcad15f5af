/**
 * A trace as operators read it: the overall outcome, then each branch with
 * its probability, the rules it matched (table/chain #n: rule) and what
 * decided it, then what the tracer had to assume.
 */
import { endpointString } from '../proxier/types.ts';
import type { TraceBranch, TracePacket, TraceResult } from '../proxier/trace-result.ts';
import type { TraceStep } from './trace-target.ts';

/** "33.33%", "100%", "0.001%". */
export function formatProbability(p: number): string {
  const pct = p * 100;
  if (pct === 100 || pct === 0) return `${pct}%`;
  const digits = pct >= 1 ? 2 : Math.min(6, 1 - Math.floor(Math.log10(pct)));
  return `${Number(pct.toFixed(digits))}%`;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

function describePacket(p: TracePacket): string {
  const host = (ip: string, port: number | undefined): string => (port === undefined ? ip : endpointString({ ip, port }));
  const from = p.origin === 'local' ? 'generated on the node' : `arriving${p.inInterface ? ` on ${p.inInterface}` : ''}`;
  return `${p.protocol} ${host(p.src, p.sport)} -> ${host(p.dst, p.dport)} (${from})`;
}

function outcome(b: TraceBranch<TraceStep>): string {
  const parts: string[] = [b.verdict];
  if (b.dnat) parts.push(`${b.redirected ? 'REDIRECT' : 'DNAT'} to ${endpointString(b.dnat)}`);
  else if (b.verdict === 'ACCEPT') parts.push('no DNAT');
  parts.push(`masquerade: ${yesNo(b.masquerade)}`);
  return parts.join(', ');
}

/** A readable, multi-line explanation of a trace (pass the packet to have it named in the heading). */
export function formatTrace(result: TraceResult<TraceStep>, packet?: TracePacket): string {
  const out: string[] = [];
  if (packet) out.push(`Packet: ${describePacket(packet)}`);
  const masq = result.masquerade === 'mixed' ? 'depends on the branch' : yesNo(result.masquerade);
  out.push(`Verdict: ${result.verdict === 'MIXED' ? 'MIXED (depends on the branch)' : result.verdict}; masquerade: ${masq}`);
  out.push(`Endpoints: ${result.endpoints.length ? result.endpoints.join(', ') : '(none: no DNAT)'}`);
  result.branches.forEach((b, i) => {
    out.push('');
    const label = result.branches.length === 1 ? 'Path' : `Branch ${i + 1} of ${result.branches.length} (${formatProbability(b.probability)})`;
    out.push(`${label}: ${outcome(b)}`);
    if (b.steps.length === 0) out.push('  (no rule matched)');
    for (const s of b.steps) out.push(`  ${s.table}/${s.chain} #${s.index}: ${s.rule}`);
    out.push(`  decided by: ${b.end}`);
  });
  if (result.warnings.length) {
    out.push('', 'Warnings:');
    for (const w of result.warnings) out.push(`  - ${w}`);
  }
  return out.join('\n') + '\n';
}
