/**
 * The nftables flow table through the kernel (nft-flows.e2e.test.ts) with
 * upstream's generation B ruleset (v1.36+: numgen map DNAT, inline mark,
 * hairpin-connections): every scenario must behave as under generation A.
 */
import { describeKernelFlows } from './nft-flow-kernel.ts';

describeKernelFlows('nftables packet flows through the kernel, generation B', 'kptnftgb', { generation: 'B' });
