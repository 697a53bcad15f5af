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

const spec = (id: string, protocol: 'TCP' | 'UDP' = 'TCP'): ListenerSpec => ({ id, protocol, service: `ns/${id}` });

describe('Listeners', () => {
  it('opens new listeners while the unwanted ones still hold their ports, then closes those and frees their ports', async () => {
    const { listeners, opened, closed } = harness();
    await listeners.openWanted([spec('a'), spec('b', 'UDP')]);
    expect(Object.fromEntries(listeners.ports)).toEqual({ a: 5000, b: 5001 });
    const r = await listeners.openWanted([spec('b', 'UDP'), spec('c')]);
    expect(r).toEqual({ opened: ['c'], failed: new Map() });
    // a is still open: c got another port.
    expect(Object.fromEntries(listeners.ports)).toEqual({ a: 5000, b: 5001, c: 5002 });
    expect(await listeners.closeUnwanted([spec('b', 'UDP'), spec('c')])).toEqual(['a']);
    expect(Object.fromEntries(listeners.ports)).toEqual({ b: 5001, c: 5002 });
    await listeners.openWanted([spec('b', 'UDP'), spec('c'), spec('d')]);
    expect(listeners.ports.get('d')).toBe(5000);
    expect(opened).toEqual(['a@5000', 'b@5001', 'c@5002', 'd@5000']);
    expect(closed).toEqual(['a']);
  });

  it('reports an exhausted range for that listener only; it gets a port once one is freed', async () => {
    const { listeners } = harness();
    const specs = ['a', 'b', 'c', 'd'].map((id) => spec(id));
    let r = await listeners.openWanted(specs);
    expect(listeners.ports.size).toBe(3);
    expect(r.failed.get('d')).toMatch(/no free port left in --proxy-port-range 5000-5002/);
    await listeners.closeUnwanted(specs.slice(1));
    r = await listeners.openWanted(specs.slice(1));
    expect(listeners.ports.get('d')).toBe(5000);
  });

  it('skips ports taken by other processes', async () => {
    const { listeners } = harness([5000]);
    await listeners.openWanted([spec('a')]);
    expect(listeners.ports.get('a')).toBe(5001);
  });

  it('skips ports to avoid, in the range and among those the kernel picks, and frees them afterwards', async () => {
    const { listeners } = harness();
    await listeners.openWanted([spec('a'), spec('b')], new Set([5000, 5002]));
    expect(Object.fromEntries(listeners.ports)).toEqual({ a: 5001 });
    await listeners.closeUnwanted([]);
    await listeners.openWanted([spec('c')]);
    expect(listeners.ports.get('c')).toBe(5000);

    const closed: number[] = [];
    let next = 40_000;
    const any = new Listeners({
      allocator: new PortAllocator(null),
      opener: async (_s: ListenerSpec, port: number) => {
        const p = port || next++;
        return { port: p, close: async () => void closed.push(p) };
      },
    });
    await any.openWanted([spec('a')], new Set([40_000, 40_001]));
    expect(any.ports.get('a')).toBe(40_002);
    expect(closed).toEqual([40_000, 40_001]);
  });

  it('moves a listener whose protocol changed', async () => {
    const { listeners, closed } = harness();
    await listeners.openWanted([spec('a')]);
    const r = await listeners.openWanted([spec('a', 'UDP')]);
    expect(closed).toEqual(['a']);
    expect(r.opened).toEqual(['a']);
  });
});
