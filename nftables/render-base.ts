/**
 * The fixed part of the table, whatever the services: base chains with their
 * jumps, masquerading, the no-endpoint, firewall and bad-port checks, the
 * service dispatch rules, the set and map declarations and the nodeport-ips
 * elements (upstream setupNFTables, generation A; with `generation: 'B'`
 * upstream v1.36+'s: no mark-for-masquerade, two masquerading rules, the
 * hairpin-connections set and the ClusterIP masquerade rule in `services`).
 */
import type { NftChain, NftElement, NftFamily, NftSet } from './model.ts';
import {
  BASE_CHAINS,
  CLUSTER_IPS,
  CLUSTER_IPS_CHECK,
  CONTAINERS,
  containerType,
  FIREWALL_CHECK,
  FIREWALL_IPS,
  FIXED_CHAINS,
  FIXED_CHAINS_B,
  HAIRPIN_CONNECTIONS,
  HAIRPIN_CONTAINER,
  JUMPS,
  MARK_FOR_MASQUERADE,
  MASQUERADING,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  NODEPORT_ENDPOINTS_CHECK,
  NODEPORT_IPS,
  REJECT_CHAIN,
  REJECT_CHAIN_COMMENT,
  SERVICE_ENDPOINTS_CHECK,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
  SERVICES,
  type NftGeneration,
} from './objects.ts';

/** Upstream formats the mark with Go's %#08x: 1<<14 -> "0x00004000". */
export function masqueradeMark(bit: number): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) throw new Error(`masquerade bit ${bit} is not in 0-31`);
  return `0x${(2 ** bit).toString(16).padStart(8, '0')}`;
}

export interface BaseSettings {
  readonly family: NftFamily;
  readonly mark: string;
  /** NodePorts on every local address except loopback (fib daddr type local) instead of @nodeport-ips. */
  readonly nodePortsMatchAll: boolean;
  /** Elements of nodeport-ips (ignored with matchAll). */
  readonly nodePortIPs: readonly string[];
  /** ServiceCIDRs of this family; traffic to their unallocated addresses is dropped. */
  readonly serviceCIDRs: readonly string[];
  /** Upstream's ruleset shape (objects.ts); A when absent. */
  readonly generation?: NftGeneration;
  /** Generation B writes the ClusterIP masquerade rule here, in `services`: --masquerade-all... */
  readonly masqueradeAll?: boolean;
  /** ...or traffic not from a pod (the local detector's negated match; null: no detection, no rule). */
  readonly ifNotLocal?: string | null;
}

export interface FixedPart {
  readonly chains: readonly NftChain[];
  /** Declarations of the fixed sets and maps; only nodeport-ips carries elements here. */
  readonly sets: readonly NftSet[];
}

function fixedRules(s: BaseSettings): Map<string, string[]> {
  const ipX = s.family;
  const noLocalhost = s.family === 'ip' ? 'ip daddr != 127.0.0.0/8' : 'ip6 daddr != ::1';
  const genB = s.generation === 'B';
  const rules = new Map<string, string[]>([...BASE_CHAINS.map((b) => b.name), ...(genB ? FIXED_CHAINS_B : FIXED_CHAINS)].map((n) => [n, []]));
  const add = (chain: string, rule: string) => rules.get(chain)!.push(rule);

  for (const j of JUMPS) add(j.from, j.match ? `${j.match} jump ${j.to}` : `jump ${j.to}`);
  if (genB) {
    add(MASQUERADING, `mark and ${s.mark} != 0 mark set mark xor ${s.mark} masquerade fully-random`);
    add(MASQUERADING, `ct status dnat ${ipX} saddr . ${ipX} daddr . meta l4proto . th dport @${HAIRPIN_CONNECTIONS} masquerade fully-random`);
  } else {
    add(MARK_FOR_MASQUERADE, `mark set mark or ${s.mark}`);
    add(MASQUERADING, `mark and ${s.mark} == 0 return`);
    add(MASQUERADING, `mark set mark xor ${s.mark}`);
    add(MASQUERADING, 'masquerade fully-random');
  }
  add(CLUSTER_IPS_CHECK, `${ipX} daddr @${CLUSTER_IPS} reject comment "Reject traffic to invalid ports of ClusterIPs"`);
  if (s.serviceCIDRs.length > 0) {
    add(CLUSTER_IPS_CHECK, `${ipX} daddr { ${s.serviceCIDRs.join(',')} } drop comment "Drop traffic to unallocated ClusterIPs"`);
  }
  add(REJECT_CHAIN, 'reject');
  add(SERVICE_ENDPOINTS_CHECK, `${ipX} daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES}`);
  add(
    NODEPORT_ENDPOINTS_CHECK,
    s.nodePortsMatchAll
      ? `${noLocalhost} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`
      : `${ipX} daddr @${NODEPORT_IPS} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`,
  );
  add(FIREWALL_CHECK, `${ipX} daddr . meta l4proto . th dport vmap @${FIREWALL_IPS}`);
  if (genB && s.masqueradeAll) {
    add(SERVICES, `${ipX} daddr @${CLUSTER_IPS} mark set mark or ${s.mark} comment "masquerade all clusterIP traffic"`);
  } else if (genB && s.ifNotLocal) {
    add(
      SERVICES,
      `${ipX} daddr @${CLUSTER_IPS} ${s.ifNotLocal} mark set mark or ${s.mark} comment "masquerade clusterIP traffic from outside cluster"`,
    );
  }
  add(SERVICES, `${ipX} daddr . meta l4proto . th dport vmap @${SERVICE_IPS}`);
  add(
    SERVICES,
    s.nodePortsMatchAll
      ? `fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`
      : `${ipX} daddr @${NODEPORT_IPS} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`,
  );
  return rules;
}

export function renderFixed(s: BaseSettings): FixedPart {
  const rules = fixedRules(s);
  const chains: NftChain[] = [
    ...BASE_CHAINS.map((b) => ({
      name: b.name,
      base: { type: b.type, hook: b.hook, priority: b.priority },
      comment: null,
      rules: rules.get(b.name)!,
    })),
    ...(s.generation === 'B' ? FIXED_CHAINS_B : FIXED_CHAINS).map((name) => ({
      name,
      base: null,
      comment: name === REJECT_CHAIN ? REJECT_CHAIN_COMMENT : null,
      rules: rules.get(name)!,
    })),
  ];
  const nodePortElements: NftElement[] = s.nodePortIPs.map((ip) => ({ key: ip, value: null, comment: null }));
  const sets: NftSet[] = [];
  for (const row of s.generation === 'B' ? [HAIRPIN_CONTAINER, ...CONTAINERS] : CONTAINERS) {
    if (row.name === NODEPORT_IPS && s.nodePortsMatchAll) continue;
    sets.push({
      name: row.name,
      kind: row.kind,
      type: containerType(row, s.family),
      flags: [],
      timeout: null,
      comment: row.comment,
      elements: row.name === NODEPORT_IPS ? nodePortElements : [],
    });
  }
  return { chains, sets };
}
