/**
 * Upstream's packet-flow test shape (helpers_test.go packetFlowTest and
 * runPacketFlowTests) over our tracer: a source, a destination, and the
 * expected output — "" (no DNAT), "DROP", "REJECT", or the endpoints hit,
 * "ip:port, ip:port" — plus whether the packet is masqueraded. A source that
 * is one of the node's addresses is traced as generated on the node.
 */
import { expect } from 'vitest';
import type { Protocol } from '../proxier/types.ts';
import type { NftTable } from './model.ts';
import type { TraceResult } from '../proxier/trace-result.ts';
import { traceNft } from './trace.ts';
import type { TraceStep } from './trace-rule.ts';
import { TEST_NODE_IPS } from './upstream.case.ts';

export interface PacketFlowTest {
  readonly name: string;
  readonly sourceIP: string;
  readonly protocol?: Protocol;
  readonly destIP: string;
  readonly destPort: number;
  readonly output: string;
  readonly masq?: boolean;
}

export function flowOutput(r: TraceResult<TraceStep>): string {
  if (r.verdict === 'DROP' || r.verdict === 'REJECT') return r.verdict;
  if (r.verdict === 'MIXED') return `MIXED(${r.branches.map((b) => b.verdict).join(',')})`;
  return [...r.endpoints].sort().join(', ');
}

export function runFlow(table: NftTable, f: PacketFlowTest, localAddresses: readonly string[] = TEST_NODE_IPS): TraceResult<TraceStep> {
  const origin = localAddresses.includes(f.sourceIP) ? 'local' : 'external';
  return traceNft(table, { src: f.sourceIP, dst: f.destIP, protocol: f.protocol ?? 'TCP', dport: f.destPort, origin }, { localAddresses });
}

export function checkFlow(table: NftTable, f: PacketFlowTest, localAddresses?: readonly string[]): void {
  const r = runFlow(table, f, localAddresses);
  const why = r.branches.map((b) => `${b.verdict} ${b.dnat ? `${b.dnat.ip}:${b.dnat.port}` : '-'} masq=${b.masquerade} (${b.end})`).join('; ');
  expect(r.warnings, why).toEqual([]);
  expect(flowOutput(r), why).toBe(f.output.split(', ').sort().join(', '));
  if (f.output !== 'DROP' && f.output !== 'REJECT' && f.output !== '') expect(r.masquerade, why).toBe(f.masq ?? false);
}
