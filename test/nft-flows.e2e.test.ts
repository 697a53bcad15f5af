/**
 * The flow table in nftables mode through the real kernel: a two-node
 * namespace cluster with pods and an outside client (test/netns); each
 * scenario's table is loaded into node-1 with `nft -f` (after deleting the
 * previous scenario's tables), and real TCP and UDP requests check which pods
 * answer, what source they see, and which requests are rejected or dropped.
 */
import { describeKernelFlows } from './nft-flow-kernel.ts';

describeKernelFlows('nftables packet flows through the kernel', 'kptnftfl');
