/**
 * The process metrics client_golang's process collector (collectors.NewProcessCollector, which component-base's
 * legacyregistry registers) has and prom-client's default metrics lack: process_virtual_memory_max_bytes from
 * /proc/self/limits, process_network_{receive,transmit}_bytes_total from /proc/self/net/netstat (procfs
 * Proc.Limits, Proc.Netstat).
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';
import { ipExtOctets, maxAddressSpace } from './process-metrics.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1048576              1048576              files
Max address space         unlimited            unlimited            bytes
`;

describe('process metrics as processCollector.processCollect reads them', () => {
  it("reads the soft address-space limit, 'unlimited' as RLIM64_INFINITY (procfs parseUint)", () => {
    expect(maxAddressSpace(LIMITS)).toBe(18446744073709551615);
    expect(
      maxAddressSpace(LIMITS.replace('unlimited            unlimited            bytes', '4294967296           8589934592           bytes')),
    ).toBe(4294967296);
    expect(maxAddressSpace('Limit Soft Hard Units\n')).toBeNull();
  });

  it("reads IpExt's InOctets and OutOctets, 0 when the kernel lists none (Netstat's nil pointers)", () => {
    const netstat =
      'TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\nIpExt: InNoRoutes InTruncatedPkts InOctets OutOctets\nIpExt: 0 0 384972383 3145171\n';
    expect(ipExtOctets(netstat)).toEqual({ in: 384972383, out: 3145171 });
    expect(ipExtOctets('TcpExt: A\nTcpExt: 1\n')).toEqual({ in: 0, out: 0 });
  });

  it('exports them with client_golang help texts, from this process', async () => {
    const text = await createMetrics(new Registry()).registry.metrics();
    expect(text).toContain('# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available in bytes.\n');
    expect(text).toContain('# TYPE process_network_receive_bytes_total counter\n');
    expect(text).toContain('# HELP process_network_transmit_bytes_total Number of bytes sent by the process over the network.\n');
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('process_virtual_memory_max_bytes')).toBe(maxAddressSpace(readFileSync('/proc/self/limits', 'utf8')));
    expect(value('process_network_receive_bytes_total')).toBeGreaterThan(0);
  });
});
