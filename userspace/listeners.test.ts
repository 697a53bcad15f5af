import { describe, expect, it } from 'vitest';
import { Listeners, type ListenerSpec } from './listeners.ts';
import { PortAllocator } from './port-allocator.ts';

function harness(failPorts: number[] = []) {
  const opened: string[] = [];
  const closed: string[] = [];
  let next = 40000;
  const listeners = new Listeners({
    allocator: new PortAllocator({ base: 5000, size: 3 }, () => 0),
    opener: async (spec: ListenerSpec, port: number) => {
      if (failPorts.includes(port)) throw Object.assign(new Error(`listen EADDRINUSE: address already in use :::${port}`), { code: 'EADDRINUSE' });
      opened.push(`${spec.id}@${port}`);
      return { port: port || next++, close: async () => void closed.push(spec.id) };
    },
  });
  return { listeners, opened, closed };
}

describe('Listeners', () => {
  it('opens new listeners, keeps existing ones, closes removed ones and frees their ports', async () => {
    const { listeners, opened, closed } = harness();
    let r = await listeners.reconcile([
      { id: 'a', protocol: 'TCP', service: 'ns/a' },
      { id: 'b', protocol: 'UDP', service: 'ns/b' },
    ]);
    expect(Object.fromEntries(r.ports)).toEqual({ a: 5000, b: 5001 });
    r = await listeners.reconcile([
      { id: 'b', protocol: 'UDP', service: 'ns/b' },
      { id: 'c', protocol: 'TCP', service: 'ns/c' },
    ]);
    expect(r).toMatchObject({ opened: ['c'], closed: ['a'] });
    expect(Object.fromEntries(r.ports)).toEqual({ b: 5001, c: 5000 });
    expect(opened).toEqual(['a@5000', 'b@5001', 'c@5000']);
    expect(closed).toEqual(['a']);
  });

  it('reports an exhausted range for that listener only and retries at the next sync', async () => {
    const { listeners } = harness();
    const specs = ['a', 'b', 'c', 'd'].map((id) => ({ id, protocol: 'TCP' as const, service: `ns/${id}` }));
    let r = await listeners.reconcile(specs);
    expect(r.ports.size).toBe(3);
    expect(r.failed.get('d')).toMatch(/no free port left in --proxy-port-range 5000-5002/);
    r = await listeners.reconcile(specs.filter((s) => s.id !== 'a'));
    expect(r.ports.get('d')).toBe(5000);
  });

  it('skips ports taken by other processes', async () => {
    const { listeners } = harness([5000]);
    const r = await listeners.reconcile([{ id: 'a', protocol: 'TCP', service: 'ns/a' }]);
    expect(r.ports.get('a')).toBe(5001);
  });

  it('moves a listener whose protocol changed', async () => {
    const { listeners, closed } = harness();
    await listeners.reconcile([{ id: 'a', protocol: 'TCP', service: 'ns/a' }]);
    const r = await listeners.reconcile([{ id: 'a', protocol: 'UDP', service: 'ns/a' }]);
    expect(closed).toEqual(['a']);
    expect(r.opened).toEqual(['a']);
  });
});
