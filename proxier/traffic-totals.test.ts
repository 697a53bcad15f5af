import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrafficTotals, type CounterReading } from './traffic-totals.ts';

const r = (object: string, endpoint: string, packets: number, service = 'ns1/web:http'): CounterReading => ({
  object,
  service,
  endpoint,
  packets,
  bytes: packets * 60,
});
const packets = (t: TrafficTotals) => Object.fromEntries(t.list().map((e) => [`${e.service} ${e.endpoint}`, e.packets]));

describe('TrafficTotals', () => {
  it('counts the growth between readings, and endpoints nothing reached at zero', () => {
    const t = new TrafficTotals({ maxEndpoints: 100 });
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5), r('SEP-B', '10.0.0.2:80', 0)], 0);
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 8), r('SEP-B', '10.0.0.2:80', 0)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 8, 'ns1/web:http 10.0.0.2:80': 0 });
    expect(t.list()[0]).toEqual({ service: 'ns1/web:http', endpoint: '10.0.0.1:80', packets: 8, bytes: 480 });
  });

  it('stays monotonic across a rewrite: a chain written again counts its whole (restarted) value', () => {
    const t = new TrafficTotals({ maxEndpoints: 100 });
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5), r('SEP-B', '10.0.0.2:80', 3)], 0);
    t.rewritten('IPv4', ['SEP-A', 'SEP-B']);
    // 7 new connections to A since the rewrite: more than before it, so only the report tells it restarted.
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 7), r('SEP-B', '10.0.0.2:80', 1)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 12, 'ns1/web:http 10.0.0.2:80': 4 });
    // Not rewritten again: growth only.
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 9), r('SEP-B', '10.0.0.2:80', 1)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 14, 'ns1/web:http 10.0.0.2:80': 4 });
  });

  it('takes a counter lower than last time as restarted (a rewrite nobody reported)', () => {
    const t = new TrafficTotals({ maxEndpoints: 100 });
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5)], 0);
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 2)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 7 });
  });

  it('drops the series of an endpoint whose chain is gone; one that comes back starts from zero', () => {
    const t = new TrafficTotals({ maxEndpoints: 100 });
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5), r('SEP-B', '10.0.0.2:80', 3)], 0);
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 5 });
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5), r('SEP-B', '10.0.0.2:80', 1)], 0);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 5, 'ns1/web:http 10.0.0.2:80': 1 });
  });

  it('keeps the families apart, each with the time of its last reading, and forgets one', () => {
    const t = new TrafficTotals({ maxEndpoints: 100 });
    expect(t.readAt('IPv4')).toBeNull();
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 5)], 1000);
    t.observe('IPv6', [r('SEP-A', '[fd00::1]:80', 2)], 1500);
    t.observe('IPv4', [r('SEP-A', '10.0.0.1:80', 6)], 2000);
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 6, 'ns1/web:http [fd00::1]:80': 2 });
    expect([t.readAt('IPv4'), t.readAt('IPv6')]).toEqual([2000, 1500]);
    t.forget('IPv6');
    expect(packets(t)).toEqual({ 'ns1/web:http 10.0.0.1:80': 6 });
    expect(t.readAt('IPv6')).toBeNull();
  });

  it('counts at most maxEndpoints pairs and reports when the cap starts and stops biting', () => {
    const calls: [number, number][] = [];
    const t = new TrafficTotals({ maxEndpoints: 2, onCap: (n, max) => calls.push([n, max]) });
    const five = ['1', '2', '3', '4', '5'].map((i) => r(`SEP-${i}`, `10.0.0.${i}:80`, 1));
    t.observe('IPv4', five, 0);
    t.observe('IPv4', five, 0);
    expect(t.list()).toHaveLength(2);
    expect(calls).toEqual([[3, 2]]);
    // The counted pairs stay counted; others are not added while the cap holds.
    expect(t.list().map((e) => e.endpoint)).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    t.observe('IPv4', five.slice(0, 2), 0);
    expect(calls).toEqual([
      [3, 2],
      [0, 2],
    ]);
    // An IPv6 reading within the cap does not end a cap IPv4 hits.
    t.observe('IPv4', five, 0);
    t.observe('IPv6', [], 0);
    expect(calls).toHaveLength(3);
  });

  it('equals the traffic exactly when every rewrite is reported and read before (a kernel model, random runs)', () => {
    type Step = { kind: 'traffic'; ep: number; n: number } | { kind: 'read' } | { kind: 'sync'; eps: number[] };
    const step = fc.oneof(
      fc.record({ kind: fc.constant('traffic' as const), ep: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('read' as const) }),
      fc.record({ kind: fc.constant('sync' as const), eps: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps: Step[]) => {
        const kernel = [0, 0, 0, 0];
        const sent = [0, 0, 0, 0];
        let lastTotals: Record<string, number> = {};
        const t = new TrafficTotals({ maxEndpoints: 10 });
        const read = () =>
          t.observe(
            'IPv4',
            kernel.map((p, i) => r(`SEP-${i}`, `10.0.0.${i}:80`, p)),
            0,
          );
        for (const s of steps) {
          if (s.kind === 'traffic') {
            kernel[s.ep]! += s.n;
            sent[s.ep]! += s.n;
          } else if (s.kind === 'read') read();
          else {
            // A full sync reads first, then rewrites the chains (their counters restart), then reports them.
            read();
            for (const e of s.eps) kernel[e] = 0;
            t.rewritten(
              'IPv4',
              s.eps.map((e) => `SEP-${e}`),
            );
          }
          const now = packets(t);
          for (const [k, v] of Object.entries(lastTotals)) expect(now[k]).toBeGreaterThanOrEqual(v);
          lastTotals = now;
        }
        read();
        expect(Object.values(packets(t))).toEqual(sent);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});
