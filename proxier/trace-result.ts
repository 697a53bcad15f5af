/**
 * What a packet tracer takes and returns, whatever the mode's rules are
 * (iptables/trace.ts over a Ruleset, nftables/trace.ts over a table): the
 * packet, and per branch (one per endpoint a probability ladder or numgen can
 * pick) its verdict, DNAT, masquerade and the rules it matched. `kube-proxy-ts
 * trace` and the packet-flow tests read this shape.
 */
import type { Protocol } from './types.ts';

export type TraceVerdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface TracePacket {
  readonly src: string;
  readonly dst: string;
  readonly protocol: Protocol;
  readonly dport: number;
  readonly sport?: number;
  /** Arriving from outside the node (pods included) or generated on the node itself. */
  readonly origin: 'external' | 'local';
  readonly inInterface?: string;
  /** Initial packet mark (default 0). */
  readonly mark?: number;
}

export interface TraceBranch<Step> {
  readonly probability: number;
  readonly verdict: TraceVerdict;
  readonly dnat: { readonly ip: string; readonly port: number } | null;
  /** The DNAT was a REDIRECT to a local address (iptables userspace portals; never in nftables mode). */
  readonly redirected: boolean;
  readonly masquerade: boolean;
  /** Every rule that matched, in order. */
  readonly steps: readonly Step[];
  /** What decided the verdict, e.g. "filter KUBE-SERVICES rule 2: REJECT" or "reject-chain rule 1: reject". */
  readonly end: string;
}

export interface TraceResult<Step> {
  readonly branches: readonly TraceBranch<Step>[];
  /** Unique "ip:port" DNAT targets in order of first appearance. */
  readonly endpoints: readonly string[];
  readonly verdict: TraceVerdict | 'MIXED';
  readonly masquerade: boolean | 'mixed';
  readonly warnings: readonly string[];
}
