import { describe, expect, it } from 'vitest';
import type { EndpointCounter } from '../../iptables/endpoint-counters.ts';
import { formatFrame, rates } from './top-view.ts';

const c = (chain: string, service: string, endpoint: string, packets: number, bytes = packets * 60): EndpointCounter => ({
  chain,
  service,
  endpoint,
  packets,
  bytes,
});

describe('top: rates between two readings', () => {
  it('gives packets per second and the share of each endpoint, busiest service first', () => {
    const before = [
      c('KUBE-SEP-A', 'ns/web:http', '10.0.0.1:80', 100),
      c('KUBE-SEP-B', 'ns/web:http', '10.0.0.2:80', 50),
      c('KUBE-SEP-C', 'ns/db', '10.0.0.3:5432', 7),
    ];
    const after = [
      c('KUBE-SEP-A', 'ns/web:http', '10.0.0.1:80', 130),
      c('KUBE-SEP-B', 'ns/web:http', '10.0.0.2:80', 60),
      c('KUBE-SEP-C', 'ns/db', '10.0.0.3:5432', 7),
    ];
    const r = rates(before, after, 2);
    expect(r.map((s) => [s.service, s.packetsPerSecond])).toEqual([
      ['ns/web:http', 20],
      ['ns/db', 0],
    ]);
    expect(r[0]!.endpoints.map((e) => [e.endpoint, e.packetsPerSecond, e.bytesPerSecond, e.share, e.packets])).toEqual([
      ['10.0.0.1:80', 15, 900, 0.75, 130],
      ['10.0.0.2:80', 5, 300, 0.25, 60],
    ]);
    expect(r[1]!.endpoints[0]!.share).toBe(0);
  });

  it('counts a restarted counter (chain rewritten by a sync) and a new chain whole, never negative', () => {
    const r = rates([c('KUBE-SEP-A', 's', '10.0.0.1:80', 500)], [c('KUBE-SEP-A', 's', '10.0.0.1:80', 4), c('KUBE-SEP-N', 's', '10.0.0.9:80', 6)], 1);
    expect(r[0]!.endpoints.map((e) => [e.endpoint, e.packetsPerSecond])).toEqual([
      ['10.0.0.1:80', 4],
      ['10.0.0.9:80', 6],
    ]);
  });
});

describe('top: the frame', () => {
  const at = new Date(Date.UTC(2026, 0, 1, 12, 0, 5));
  it('shows each service with its endpoints, share and a bar that fits the terminal', () => {
    const r = rates(
      [c('KUBE-SEP-A', 'ns/web:http', '10.0.0.1:80', 0), c('KUBE-SEP-B', 'ns/web:http', '10.0.0.2:80', 0)],
      [c('KUBE-SEP-A', 'ns/web:http', '10.0.0.1:80', 30), c('KUBE-SEP-B', 'ns/web:http', '10.0.0.2:80', 10)],
      2,
    );
    const lines = formatFrame(r, { source: 'IPv4 nat, nft', intervalSeconds: 2, at, columns: 100, rows: 40 });
    expect(lines[0]).toBe('kube-proxy-ts top 12:00:05Z | IPv4 nat, nft | every 2s | 1 services, 2 endpoints');
    expect(lines).toContain('ns/web:http                   20.0      1.2K');
    const a = lines.find((l) => l.startsWith('  10.0.0.1:80'))!;
    expect(a).toMatch(/^ {2}10\.0\.0\.1:80 +15\.0 +900 +75% +30 {2}#+\.+$/);
    expect(lines.every((l) => l.length <= 100)).toBe(true);
    const bar = a.split('  ').at(-1)!;
    expect(bar.replace(/\./g, '').length / bar.length).toBeCloseTo(0.75, 1);
  });

  it('says when there is nothing to show, and cuts services that do not fit the terminal with a count', () => {
    expect(formatFrame([], { source: 'x', intervalSeconds: 1, at, columns: 80, rows: 24 }).at(-1)).toMatch(/no KUBE-SEP chains/);
    const many = Array.from({ length: 20 }, (_, i) => c(`KUBE-SEP-${i}`, `ns/s${String(i).padStart(2, '0')}`, `10.0.0.${i}:80`, 0));
    const lines = formatFrame(rates(many, many, 1), { source: 'x', intervalSeconds: 1, at, columns: 80, rows: 12 });
    expect(lines.length).toBeLessThanOrEqual(12);
    expect(lines.at(-1)).toMatch(/^\.\.\. \d+ more service port\(s\) not shown/);
  });
});
