import { describe, expect, it } from 'vitest';
import { parsePortRange, PortAllocator } from './port-allocator.ts';

describe('parsePortRange', () => {
  it('reads upstream syntaxes', () => {
    expect(parsePortRange('')).toBeNull();
    expect(parsePortRange('0-0')).toBeNull();
    expect(parsePortRange('30000-30009')).toEqual({ base: 30000, size: 10 });
    expect(parsePortRange('30000+9')).toEqual({ base: 30000, size: 10 });
    expect(parsePortRange('8080')).toEqual({ base: 8080, size: 1 });
  });
  it('names the problem', () => {
    expect(() => parsePortRange('a-b')).toThrow('invalid --proxy-port-range "a-b"');
    expect(() => parsePortRange('200-100')).toThrow(/begin <= end/);
    expect(() => parsePortRange('1-70000')).toThrow(/65535/);
  });
});

describe('PortAllocator', () => {
  it('lets the kernel choose without a range', () => {
    expect(new PortAllocator(null).allocate()).toEqual({ port: 0 });
  });

  it('hands out every port of the range once, then reports exhaustion, then reuses released ports', () => {
    const a = new PortAllocator({ base: 100, size: 3 }, () => 0.99);
    const ports = [a.allocate(), a.allocate(), a.allocate()].map((x) => ('port' in x ? x.port : -1));
    expect(ports.sort()).toEqual([100, 101, 102]);
    expect(a.allocate()).toEqual({ error: 'no free port left in --proxy-port-range 100-102 (3 ports in use)' });
    a.release(101);
    expect(a.allocate()).toEqual({ port: 101 });
  });

  it('skips ports reserved after the kernel refused them', () => {
    const a = new PortAllocator({ base: 100, size: 2 }, () => 0);
    expect(a.reserve(100)).toBe(true);
    expect(a.allocate()).toEqual({ port: 101 });
  });
});
