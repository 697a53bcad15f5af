import { describe, expect, it } from 'vitest';
import { RoundRobinBalancer } from './round-robin.ts';

function balancer() {
  let now = 0;
  const b = new RoundRobinBalancer({ now: () => now, random: () => 0.5 });
  return { b, advance: (ms: number) => (now += ms) };
}
const pick = (r: ReturnType<RoundRobinBalancer['next']>) => ('endpoint' in r ? r.endpoint : r.error);

describe('RoundRobinBalancer', () => {
  it('fails for unknown service ports and empty endpoint lists', () => {
    const { b } = balancer();
    expect(pick(b.next('ns/svc:p', '1.1.1.1'))).toBe('unknown service port');
    b.update('ns/svc:p', [], { timeoutSeconds: 0 });
    expect(pick(b.next('ns/svc:p', '1.1.1.1'))).toBe('no endpoints');
  });

  it('cycles through every endpoint and wraps', () => {
    const { b } = balancer();
    b.update('k', ['a:1', 'b:1', 'c:1'], { timeoutSeconds: 0 });
    const seen = Array.from({ length: 6 }, () => pick(b.next('k', '1.1.1.1')));
    expect(new Set(seen.slice(0, 3))).toEqual(new Set(['a:1', 'b:1', 'c:1']));
    expect(seen.slice(3)).toEqual(seen.slice(0, 3));
  });

  it('keeps the rotation across no-op updates and restarts it on a real change', () => {
    const { b } = balancer();
    b.update('k', ['a:1', 'b:1'], { timeoutSeconds: 0 });
    const first = pick(b.next('k', 'x'));
    b.update('k', ['b:1', 'a:1'], { timeoutSeconds: 0 });
    expect(pick(b.next('k', 'x'))).not.toBe(first);
    b.update('k', ['a:1', 'b:1', 'c:1'], { timeoutSeconds: 0 });
    expect(new Set(Array.from({ length: 3 }, () => pick(b.next('k', 'x'))))).toEqual(new Set(['a:1', 'b:1', 'c:1']));
  });

  it('sticks each client to its endpoint and honours the Service timeout (sliding)', () => {
    const { b, advance } = balancer();
    b.update('k', ['a:1', 'b:1', 'c:1'], { timeoutSeconds: 60 });
    const clients = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    const first = clients.map((c) => pick(b.next('k', c)));
    expect(new Set(first).size).toBe(3);
    for (let i = 0; i < 5; i++) {
      advance(50_000); // under the 60 s timeout each time: the record slides
      expect(clients.map((c) => pick(b.next('k', c)))).toEqual(first);
    }
    advance(61_000);
    expect(b.sweep()).toBe(3);
  });

  it('moves a displaced client and keeps the others when an endpoint goes away', () => {
    const { b } = balancer();
    b.update('k', ['a:1', 'b:1'], { timeoutSeconds: 600 });
    const x = pick(b.next('k', 'x'));
    const y = pick(b.next('k', 'y'));
    b.update('k', [x], { timeoutSeconds: 600 });
    expect(pick(b.next('k', 'x'))).toBe(x);
    expect(pick(b.next('k', 'y'))).toBe(x);
    expect(y).not.toBe(x);
  });

  it('skips and overwrites the sticky record on an affinity reset (failed dial)', () => {
    const { b } = balancer();
    b.update('k', ['a:1', 'b:1'], { timeoutSeconds: 600 });
    const first = pick(b.next('k', 'x'));
    const retry = pick(b.next('k', 'x', true));
    expect(retry).not.toBe(first);
    expect(pick(b.next('k', 'x'))).toBe(retry);
  });
});
