import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { PickResult, ProxyEvent } from './proxy-events.ts';
import { UdpProxy, type UdpProxyOptions } from './udp-proxy.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function bound(type: 'udp4' | 'udp6' = 'udp4', host = type === 'udp4' ? '127.0.0.1' : '::1'): Promise<Socket> {
  const s = createSocket(type);
  await new Promise<void>((r) => s.bind(0, host, r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/** Echo backend that prefixes replies with its name (no prefix when name is ''). */
async function backend(name: string): Promise<string> {
  const s = await bound();
  s.on('message', (m: Buffer, r: RemoteInfo) => s.send(name ? Buffer.concat([Buffer.from(`${name}:`), m]) : m, r.port, r.address));
  return `127.0.0.1:${s.address().port}`;
}

async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function proxy(opts: Partial<UdpProxyOptions> & Pick<UdpProxyOptions, 'pick'>): Promise<{ p: UdpProxy; events: ProxyEvent[] }> {
  const events: ProxyEvent[] = [];
  const p = new UdpProxy({ id: 'ns/dns:dns', host: '127.0.0.1', port: 0, onEvent: (e) => events.push(e), ...opts });
  await p.listen();
  cleanups.push(() => p.closeAll());
  return { p, events };
}

/** Sends msg to port, resolves with the first reply (or null after ms). */
function request(client: Socket, port: number, msg: Buffer | string, ms = 1000): Promise<{ msg: Buffer; from: RemoteInfo } | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => (client.off('message', on), resolve(null)), ms);
    const on = (m: Buffer, from: RemoteInfo): void => {
      clearTimeout(t);
      client.off('message', on);
      resolve({ msg: m, from });
    };
    client.on('message', on);
    client.send(msg, port, client.address().family === 'IPv6' ? '::1' : '127.0.0.1');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ofType = <T extends ProxyEvent['type']>(events: ProxyEvent[], type: T) =>
  events.filter((e): e is Extract<ProxyEvent, { type: T }> => e.type === type);

describe('UdpProxy', () => {
  it('forwards datagrams and sends replies from the listener address', async () => {
    const a = await backend('A');
    const { p, events } = await proxy({ pick: () => ({ endpoint: a }) });
    const c = await bound();
    const r1 = await request(c, p.port, 'ping');
    expect(r1?.msg.toString()).toBe('A:ping');
    expect(r1?.from).toMatchObject({ address: '127.0.0.1', port: p.port });
    expect((await request(c, p.port, 'again'))?.msg.toString()).toBe('A:again');
    expect(p.activeSessions).toBe(1);
    expect(ofType(events, 'udp-session-start')).toEqual([
      { type: 'udp-session-start', id: 'ns/dns:dns', client: `127.0.0.1:${c.address().port}`, endpoint: a },
    ]);
    await p.close();
    expect(ofType(events, 'udp-session-end')).toMatchObject([
      { reason: 'shutdown', datagramsToEndpoint: 2, datagramsToClient: 2, bytesToEndpoint: 9, bytesToClient: 13 },
    ]);
  });

  it('gives each client address its own session (round robin across endpoints)', async () => {
    const list = [await backend('A'), await backend('B')];
    let i = 0;
    const { p } = await proxy({ pick: () => ({ endpoint: list[i++ % 2]! }) });
    const c1 = await bound();
    const c2 = await bound();
    expect((await request(c1, p.port, '1'))?.msg.toString()).toBe('A:1');
    expect((await request(c2, p.port, '2'))?.msg.toString()).toBe('B:2');
    expect((await request(c1, p.port, '3'))?.msg.toString()).toBe('A:3');
    expect(p.activeSessions).toBe(2);
  });

  it('ends idle sessions; traffic keeps a session alive; the next datagram picks again', async () => {
    const a = await backend('A');
    const picks: string[] = [];
    const { p, events } = await proxy({ pick: (ip) => (picks.push(ip), { endpoint: a }), idleTimeoutMs: 250 });
    const c = await bound();
    for (let k = 0; k < 6; k++) {
      expect(await request(c, p.port, `k${k}`)).not.toBeNull();
      await sleep(60);
    }
    expect(picks).toEqual(['127.0.0.1']);
    await sleep(350);
    expect(p.activeSessions).toBe(0);
    expect(ofType(events, 'udp-session-end')).toMatchObject([{ reason: 'idle', datagramsToEndpoint: 6, datagramsToClient: 6 }]);
    expect((await request(c, p.port, 'new'))?.msg.toString()).toBe('A:new');
    expect(picks).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(ofType(events, 'udp-session-start')).toHaveLength(2);
  });

  it('keeps a session under a --udp-timeout longer than Node timers hold (800h, which upstream takes), without a timer loop', async () => {
    const overflows: string[] = [];
    const onWarning = (w: Error) => void (w.name === 'TimeoutOverflowWarning' && overflows.push(w.message));
    process.on('warning', onWarning);
    try {
      const a = await backend('A');
      const { p } = await proxy({ pick: () => ({ endpoint: a }), idleTimeoutMs: 800 * 3_600_000 });
      const c = await bound();
      expect((await request(c, p.port, 'x'))?.msg.toString()).toBe('A:x');
      // Before: the idle timer fired after 1 ms and re-armed itself, again and again, for as long as the session lived.
      await sleep(100);
      expect([p.activeSessions, overflows]).toEqual([1, []]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('carries a 60000-byte datagram intact both ways (no 4096-byte truncation)', async () => {
    const echo = await backend('');
    const { p } = await proxy({ pick: () => ({ endpoint: echo }) });
    const c = await bound();
    const big = Buffer.alloc(60_000);
    for (let k = 0; k < big.length; k++) big[k] = (k * 31) & 0xff;
    const r = await request(c, p.port, big);
    expect(r?.msg.length).toBe(60_000);
    expect(r?.msg.equals(big)).toBe(true);
  });

  it('drops datagrams when pick fails, and serves once an endpoint exists', async () => {
    const a = await backend('A');
    const answers: PickResult[] = [{ error: 'no endpoints' }, { endpoint: 'bad' }, { endpoint: a }];
    const { p, events } = await proxy({ pick: () => answers.shift()! });
    const c = await bound();
    expect(await request(c, p.port, 'x', 100)).toBeNull();
    expect(await request(c, p.port, 'y', 100)).toBeNull();
    expect(ofType(events, 'udp-dropped')).toMatchObject([
      { reason: 'no endpoint', error: 'no endpoints' },
      { reason: 'no endpoint', error: 'malformed endpoint "bad"' },
    ]);
    expect(p.activeSessions).toBe(0);
    expect((await request(c, p.port, 'z'))?.msg.toString()).toBe('A:z');
  });

  it('ends a session on ICMP port unreachable from the endpoint', async () => {
    const dead = await deadPort();
    const { p, events } = await proxy({ pick: () => ({ endpoint: `127.0.0.1:${dead}` }), idleTimeoutMs: 5000 });
    const c = await bound();
    expect(await request(c, p.port, 'anyone?', 100)).toBeNull();
    expect(p.activeSessions).toBe(0);
    expect(ofType(events, 'udp-session-end')).toMatchObject([{ reason: 'error', error: expect.stringContaining('ECONNREFUSED') }]);
  });

  it('on a dual-stack listener serves IPv4 clients by their plain IPv4 address', async () => {
    const a = await backend('A');
    const ips: string[] = [];
    const { p } = await proxy({ host: '::', pick: (ip) => (ips.push(ip), { endpoint: a }) });
    const v4 = await bound('udp4');
    const v6 = await bound('udp6');
    const r4 = await request(v4, p.port, '4');
    expect(r4?.msg.toString()).toBe('A:4');
    expect(r4?.from).toMatchObject({ address: '127.0.0.1', port: p.port });
    expect((await request(v6, p.port, '6'))?.msg.toString()).toBe('A:6');
    expect(ips).toEqual(['127.0.0.1', '::1']);
  });

  it('close() ends sessions and releases the port; listen() rejects a taken port', async () => {
    const a = await backend('A');
    const { p, events } = await proxy({ pick: () => ({ endpoint: a }) });
    const port = p.port;
    const taken = new UdpProxy({ id: 'dup', host: '127.0.0.1', port, pick: () => ({ error: 'none' }) });
    await expect(taken.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const c = await bound();
    expect(await request(c, port, 'x')).not.toBeNull();
    await p.close();
    expect(p.activeSessions).toBe(0);
    expect(ofType(events, 'udp-session-end')).toMatchObject([{ reason: 'shutdown' }]);
    const again = new UdpProxy({ id: 'again', host: '127.0.0.1', port, pick: () => ({ endpoint: a }) });
    expect(await again.listen()).toBe(port);
    cleanups.push(() => again.close());
    expect((await request(c, port, 'y'))?.msg.toString()).toBe('A:y');
  });
});
