/**
 * Shared plumbing of the flow-table runners: turning a scenario into the
 * desired rulesets (through the same code path as `kube-proxy-ts render`)
 * and describing a packet's source.
 */
import { configFromFlags } from '../src/config.ts';
import { desiredFromObjects, type Desired } from '../src/desired.ts';
import type { FlagValue } from '../src/flags.ts';
import { BASE_FLAGS, CLIENT, CLIENT_6, NODE1, NODE1_6, nodes, PODS, type FlowScenario, type Source } from './flow-cases.case.ts';
import { makeServiceCIDR } from './builders.ts';

/** The scenario's desired state; `serviceCIDRs` become the cluster's one ServiceCIDR object, as the API server's default "kubernetes". */
export function desiredFor(scenario: FlowScenario & { readonly serviceCIDRs?: readonly string[] }): Desired {
  const flags = new Map<string, FlagValue>(Object.entries({ ...BASE_FLAGS, ...scenario.flags }) as [string, FlagValue][]);
  const config = configFromFlags(flags);
  const serviceCIDRs = scenario.serviceCIDRs ? [makeServiceCIDR('kubernetes', scenario.serviceCIDRs)] : [];
  return desiredFromObjects(
    { services: [...scenario.services()], slices: [...scenario.slices()], nodes: nodes(), serviceCIDRs, problems: [] },
    config,
    {
      randomFully: true,
    },
  );
}

export interface SourceInfo {
  readonly ip: string;
  /** Generated on node-1 itself (nat OUTPUT) or arriving from outside it (nat PREROUTING). */
  readonly origin: 'local' | 'external';
  /** Interface the packet arrives on at node-1. */
  readonly inInterface?: string;
}

export function sourceInfo(from: Source, family: 'IPv4' | 'IPv6' = 'IPv4'): SourceInfo {
  switch (from) {
    case 'pod-a':
    case 'pod-b':
      return { ip: family === 'IPv4' ? PODS[from].ip : PODS[from].ip6, origin: 'external', inInterface: 'cbr0' };
    case 'node':
      return { ip: family === 'IPv4' ? NODE1 : NODE1_6, origin: 'local' };
    case 'localhost':
      return { ip: family === 'IPv4' ? '127.0.0.1' : '::1', origin: 'local' };
    case 'client':
      return { ip: family === 'IPv4' ? CLIENT : CLIENT_6, origin: 'external', inInterface: 'eth0' };
  }
}
