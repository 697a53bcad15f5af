import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, createServer, Socket, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEndpoint, unmapIP, type PickResult, type ProxyEvent } from './proxy-events.ts';
import { endpointString } from '../proxier/types.ts';
import { TcpProxy, type TcpProxyOptions } from './tcp-proxy.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A loopback backend; every accepted socket is destroyed at cleanup. */
async function backend(handler: (s: Socket) => void, host = '127.0.0.1'): Promise<{ port: number; server: Server; endpoint: string }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    handler(s);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const port = (server.address() as { port: number }).port;
  return { port, server, endpoint: endpointString({ ip: host, port }) };
}

/** A port with nothing listening (ECONNREFUSED). */
/**
 * A port nothing listens on, below the ephemeral range (32768-60999): a port 0 bind (the next backend's, the proxy's,
 * another test file's) can take a just-freed ephemeral port, and a dial meant to be refused then succeeds.
 */
async function deadPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const s = createServer();
    const free = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (!free) continue;
    await new Promise((r) => s.close(r));
    return port;
  }
}

async function proxy(opts: Partial<TcpProxyOptions> & Pick<TcpProxyOptions, 'pick'>): Promise<{ p: TcpProxy; events: ProxyEvent[] }> {
  const events: ProxyEvent[] = [];
  const p = new TcpProxy({ id: 'ns/svc:http', host: '127.0.0.1', port: 0, onEvent: (e) => events.push(e), ...opts });
  await p.listen();
  cleanups.push(() => p.closeAll());
  return { p, events };
}

/** Connects, writes `send` then FIN, resolves with everything received until the proxy closes. */
function exchange(port: number, send: string | Buffer = '', host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, allowHalfOpen: true });
    cleanups.push(() => s.destroy());
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    // A proxy that cannot serve a client with unread request bytes resets it.
    s.on('error', (err: NodeJS.ErrnoException) => err.code !== 'ECONNRESET' && reject(err));
    s.on('connect', () => s.end(send));
    s.on('close', () => resolve(Buffer.concat(got).toString()));
  });
}

/** Echo server that first names itself. */
const identify = (name: string) => (s: Socket) => {
  s.write(`${name}:`);
  s.pipe(s);
};

function until(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error('condition not met in time'));
      setTimeout(tick, 5);
    };
    tick();
  });
}

const closedOf = (events: ProxyEvent[]) => events.filter((e) => e.type === 'closed');

describe('endpoint addresses', () => {
  it('parses ip:port and [ipv6]:port, rejects the rest', () => {
    expect(parseEndpoint('10.0.0.1:80')).toEqual({ host: '10.0.0.1', port: 80, family: 4 });
    expect(parseEndpoint('[fd00::1]:8080')).toEqual({ host: 'fd00::1', port: 8080, family: 6 });
    for (const bad of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:65536', 'fd00::1:80', '[10.0.0.1]:80', 'host:80', '[fd00::1]80', '10.0.0.1:8a']) {
      expect(parseEndpoint(bad)).toBeNull();
    }
    expect(unmapIP('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(unmapIP('fd00::1')).toBe('fd00::1');
  });
});

describe('TcpProxy', () => {
  it('forwards to endpoints in the order pick gives them, with events', async () => {
    const a = await backend(identify('A'));
    const b = await backend(identify('B'));
    const list = [a.endpoint, b.endpoint];
    const picks: [string, number][] = [];
    let i = 0;
    const { p, events } = await proxy({ pick: (ip, attempt) => (picks.push([ip, attempt]), { endpoint: list[i++ % 2]! }) });
    expect(await exchange(p.port, 'one')).toBe('A:one');
    expect(await exchange(p.port, 'two')).toBe('B:two');
    expect(await exchange(p.port, 'three')).toBe('A:three');
    expect(picks).toEqual([
      ['127.0.0.1', 0],
      ['127.0.0.1', 0],
      ['127.0.0.1', 0],
    ]);
    await until(() => p.activeConnections === 0);
    expect(events.map((e) => e.type)).toEqual([
      'accepted',
      'connected',
      'closed',
      'accepted',
      'connected',
      'closed',
      'accepted',
      'connected',
      'closed',
    ]);
    expect(closedOf(events)[1]).toMatchObject({ id: 'ns/svc:http', endpoint: b.endpoint, reason: 'done', bytesToEndpoint: 3, bytesToClient: 5 });
  });

  it('strips the IPv4-mapped prefix and reaches IPv6 endpoints', async () => {
    const v6 = await backend(identify('six'), '::1');
    const ips: string[] = [];
    const { p } = await proxy({ host: '::', pick: (ip) => (ips.push(ip), { endpoint: v6.endpoint }) });
    expect(await exchange(p.port, 'x', '127.0.0.1')).toBe('six:x');
    expect(await exchange(p.port, 'y', '::1')).toBe('six:y');
    expect(ips).toEqual(['127.0.0.1', '::1']);
  });

  it('retries the next endpoint when a dial is refused', async () => {
    const dead = await deadPort();
    const live = await backend(identify('L'));
    const { p, events } = await proxy({ pick: (_ip, attempt) => ({ endpoint: attempt === 0 ? `127.0.0.1:${dead}` : live.endpoint }) });
    expect(await exchange(p.port, 'hi')).toBe('L:hi');
    expect(events.filter((e) => e.type === 'dial-failed')).toEqual([
      {
        type: 'dial-failed',
        id: 'ns/svc:http',
        client: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        endpoint: `127.0.0.1:${dead}`,
        attempt: 0,
        code: 'ECONNREFUSED',
      },
    ]);
    expect(events.find((e) => e.type === 'connected')).toMatchObject({ attempt: 1, endpoint: live.endpoint });
  });

  it('closes the client when every attempt fails', async () => {
    const dead = await deadPort();
    const { p, events } = await proxy({ pick: () => ({ endpoint: `127.0.0.1:${dead}` }) });
    expect(await exchange(p.port)).toBe('');
    await until(() => closedOf(events).length === 1);
    expect(events.filter((e) => e.type === 'dial-failed').map((e) => (e.type === 'dial-failed' ? e.attempt : -1))).toEqual([0, 1, 2, 3]);
    expect(closedOf(events)[0]).toMatchObject({ reason: 'dial failed', endpoint: null, bytesToEndpoint: 0, bytesToClient: 0 });
    expect(p.activeConnections).toBe(0);
  });

  it('closes the client at once on a pick error, and skips malformed endpoints', async () => {
    const live = await backend(identify('L'));
    const answers: PickResult[] = [{ error: 'no endpoints' }, { endpoint: 'nonsense' }, { endpoint: live.endpoint }];
    const { p, events } = await proxy({ pick: () => answers.shift()! });
    expect(await exchange(p.port, 'a')).toBe('');
    expect(closedOf(events)[0]).toMatchObject({ reason: 'no endpoint', error: 'no endpoints' });
    expect(events.some((e) => e.type === 'dial-failed')).toBe(false);
    expect(await exchange(p.port, 'b')).toBe('L:b');
    expect(events.find((e) => e.type === 'dial-failed')).toMatchObject({ endpoint: 'nonsense', code: 'EINVAL', attempt: 0 });
  });

  it('passes a client FIN on and still delivers the reply (upstream lost it)', async () => {
    const srv = await backend((s) => {
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => setTimeout(() => s.end(`reply to ${Buffer.concat(got).toString()}`), 50));
    });
    const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }) });
    expect(await exchange(p.port, 'request')).toBe('reply to request');
    await until(() => closedOf(events).length === 1);
    expect(closedOf(events)[0]).toMatchObject({ reason: 'done', bytesToEndpoint: 7, bytesToClient: 16 });
  });

  it('passes an endpoint FIN on while the client keeps sending', async () => {
    let received = '';
    let srvEnded = false;
    const srv = await backend((s) => {
      s.end('bye');
      s.on('data', (d: Buffer) => (received += d.toString()));
      s.on('end', () => (srvEnded = true));
    });
    const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }) });
    const c = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => c.destroy());
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise<void>((r) => c.on('end', r));
    expect(got).toBe('bye');
    for (let i = 0; i < 5; i++) {
      c.write(`more${i};`);
      await new Promise((r) => setTimeout(r, 10));
    }
    c.end();
    await until(() => srvEnded);
    expect(received).toBe('more0;more1;more2;more3;more4;');
    await until(() => closedOf(events).length === 1);
    expect(closedOf(events)[0]).toMatchObject({ reason: 'done' });
  });

  it('destroys a half-closed connection whose peer stays silent (no FIN_WAIT2 leak)', async () => {
    let peer: Socket | null = null;
    let peerError = '';
    const srv = await backend((s) => {
      peer = s;
      s.resume();
      s.on('error', (err: NodeJS.ErrnoException) => (peerError = err.code ?? ''));
    });
    const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }), halfCloseTimeoutMs: 150 });
    const t0 = Date.now();
    expect(await exchange(p.port, 'x')).toBe('');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    await until(() => p.activeConnections === 0);
    expect(closedOf(events)[0]).toMatchObject({ reason: 'half-close timeout' });
    // The proxy's socket is gone: the late peer's reply is refused.
    const late = (): boolean => (peer as Socket | null)?.write('late') ?? false;
    await until(() => (late(), peerError !== ''));
    expect(['ECONNRESET', 'EPIPE']).toContain(peerError);
  });

  it('destroys an idle connection after idleTimeoutMs, but not one with traffic', async () => {
    const srv = await backend((s) => s.pipe(s));
    const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }), idleTimeoutMs: 250 });
    const busy = connect({ port: p.port, host: '127.0.0.1' });
    const quiet = connect({ port: p.port, host: '127.0.0.1' });
    cleanups.push(() => (busy.destroy(), quiet.destroy()));
    let quietClosed = false;
    let quietError = '';
    quiet.on('error', (err: NodeJS.ErrnoException) => (quietError = err.code ?? ''));
    quiet.on('close', () => (quietClosed = true));
    for (let i = 0; i < 10; i++) {
      busy.write('.');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(quietClosed).toBe(true);
    expect(quietError).toBe('ECONNRESET');
    expect(busy.destroyed).toBe(false);
    expect(closedOf(events)).toMatchObject([{ reason: 'idle' }]);
    expect(p.activeConnections).toBe(1);
  });

  it.each([true, false])(
    'copies 64 MiB each way intact, with bounded buffering against slow readers (client read into own buffers: %s)',
    async (own) => {
      const SIZE = 64 * 1024 * 1024;
      const up = randomBytes(SIZE);
      const down = randomBytes(SIZE);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      /** Reads everything, pausing 20 ms after every 8 MiB. */
      const slowRead = (s: Socket): Promise<string> =>
        new Promise((resolve) => {
          const h = createHash('sha256');
          let sincePause = 0;
          s.on('data', (d: Buffer) => {
            h.update(d);
            sincePause += d.length;
            if (sincePause >= 8 << 20) {
              sincePause = 0;
              s.pause();
              setTimeout(() => s.resume(), 20);
            }
          });
          s.on('end', () => resolve(h.digest('hex')));
        });
      let backendHash: Promise<string> = Promise.resolve('');
      const srv = await backend((s) => {
        backendHash = slowRead(s);
        s.end(down);
      });
      const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }), ownClientReads: own });
      let maxBuffered = 0;
      const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, p.bufferedBytes())), 2);
      cleanups.push(() => clearInterval(sampler));
      const t0 = performance.now();
      const c = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
      cleanups.push(() => c.destroy());
      const clientHash = slowRead(c);
      c.end(up);
      expect(await clientHash).toBe(sha(down));
      expect(await backendHash).toBe(sha(up));
      const secs = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      await until(() => closedOf(events).length === 1);
      expect(closedOf(events)[0]).toMatchObject({ reason: 'done', bytesToEndpoint: SIZE, bytesToClient: SIZE });
      expect(maxBuffered).toBeLessThan(2 << 20);
      console.log(
        `64 MiB each way through TcpProxy: ${((2 * SIZE) / 2 ** 20 / secs).toFixed(0)} MiB/s total, max buffered in proxy ${(maxBuffered / 1024).toFixed(0)} KiB`,
      );
    },
    20_000,
  );

  it('reads a streaming endpoint into a buffer of its own, and gives it back at the first short read (quiet connections hold none)', async () => {
    let srvSocket: Socket | null = null;
    const srv = await backend((s) => {
      srvSocket = s;
      s.on('data', (d: Buffer) => s.write(d));
    });
    const { p } = await proxy({ pick: () => ({ endpoint: srv.endpoint }) });
    const c = connect({ port: p.port, host: '127.0.0.1' });
    cleanups.push(() => c.destroy());
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    c.write('hello');
    await until(() => got === 5);
    expect(p.ownReadBuffers).toBe(0);
    // A stream: the first full scratch read moves the connection to its own buffer.
    const big = randomBytes(8 << 20);
    const chunks: Buffer[] = [];
    c.removeAllListeners('data');
    c.on('data', (d: Buffer) => ((got += d.length), chunks.push(d)));
    c.pause();
    (srvSocket as Socket | null)!.write(big);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.ownReadBuffers).toBe(1);
    c.resume();
    await until(() => got === 5 + big.length);
    // A short read hands it back.
    (srvSocket as Socket | null)!.write('tail');
    await until(() => got === 5 + big.length + 4);
    expect(p.ownReadBuffers).toBe(0);
    expect(Buffer.concat(chunks).equals(Buffer.concat([big, Buffer.from('tail')]))).toBe(true);
  });

  it('reads a streaming client into a buffer of its own too (net.Server has no onread: the accepted socket is re-made)', async () => {
    let srvSocket: Socket | null = null;
    const chunks: Buffer[] = [];
    const srv = await backend((s) => {
      srvSocket = s;
      s.on('data', (d: Buffer) => chunks.push(d));
    });
    const { p } = await proxy({ pick: () => ({ endpoint: srv.endpoint }) });
    const c = connect({ port: p.port, host: '127.0.0.1' });
    cleanups.push(() => c.destroy());
    const got = (): number => chunks.reduce((n, d) => n + d.length, 0);
    c.write('hello');
    await until(() => got() === 5);
    expect(p.ownReadBuffers).toBe(0);
    // An upload into an endpoint that does not read: the client side moves to its own buffer and waits on it.
    const srvSock = (srvSocket as Socket | null)!;
    srvSock.pause();
    const big = randomBytes(8 << 20);
    c.write(big);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.ownReadBuffers).toBe(1);
    srvSock.resume();
    await until(() => got() === 5 + big.length);
    // A short read hands it back.
    c.write('tail');
    await until(() => got() === 5 + big.length + 4);
    expect(p.ownReadBuffers).toBe(0);
    expect(Buffer.concat(chunks).equals(Buffer.concat([Buffer.from('hello'), big, Buffer.from('tail')]))).toBe(true);
  });

  it('close() stops accepting and frees the port but leaves open connections; closeAll() ends them', async () => {
    const srv = await backend((s) => s.pipe(s));
    const { p, events } = await proxy({ pick: () => ({ endpoint: srv.endpoint }) });
    const port = p.port;
    const c = connect({ port, host: '127.0.0.1' });
    cleanups.push(() => c.destroy());
    const echo = (msg: string) =>
      new Promise<string>((r) => {
        c.once('data', (d: Buffer) => r(d.toString()));
        c.write(msg);
      });
    expect(await echo('before')).toBe('before');
    await p.close();
    await expect(exchange(port, 'x')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await echo('after close')).toBe('after close');
    const again = new TcpProxy({ id: 'again', host: '127.0.0.1', port, pick: () => ({ error: 'none' }) });
    expect(await again.listen()).toBe(port);
    await again.close();
    c.on('error', () => {});
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    await p.closeAll();
    await closed;
    expect(closedOf(events)).toMatchObject([{ reason: 'shutdown', bytesToEndpoint: 17, bytesToClient: 17 }]);
    expect(p.activeConnections).toBe(0);
  });

  it('dials concurrently: a hanging dial does not delay other clients', async () => {
    const live = await backend(identify('L'));
    let calls = 0;
    const hang = await deadPort();
    const { p, events } = await proxy({
      dialTimeoutsMs: [400, 400],
      pick: () => ({ endpoint: calls++ === 0 ? `127.0.0.1:${hang}` : live.endpoint }),
      // A dial to `hang` never completes (as to a blackholed address).
      connect: (o) => (o.port === hang ? new Socket() : connect(o)),
    });
    const t0 = performance.now();
    const first = exchange(p.port, 'first');
    await until(() => calls === 1);
    expect(await exchange(p.port, 'second')).toBe('L:second');
    expect(performance.now() - t0).toBeLessThan(300);
    expect(await first).toBe('L:first');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    expect(events.find((e) => e.type === 'dial-failed')).toMatchObject({ code: 'ETIMEDOUT', attempt: 0 });
  });

  it('turns TCP keepalive on only for connections that outlive one sweep (short ones never pay the setsockopt calls)', async () => {
    const srv = await backend((s) => s.pipe(s));
    const { p } = await proxy({ pick: () => ({ endpoint: srv.endpoint }), keepAliveMs: 150 });
    /** The proxy's two sockets of the connection (local port = proxy port, remote port = backend port), from ss: do they run a keepalive timer? */
    const keepalive = (): boolean[] =>
      spawnSync('ss', ['-tnoH', 'state', 'established'], { encoding: 'utf8' })
        .stdout.split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter(([, , local, peer]) => local === `127.0.0.1:${p.port}` || peer === srv.endpoint)
        .map((cols) => cols.some((c) => c.startsWith('timer:(keepalive')));
    const c = connect({ port: p.port, host: '127.0.0.1' });
    cleanups.push(() => c.destroy());
    await new Promise<void>((r) => c.once('data', () => r()).write('x'));
    expect(keepalive()).toEqual([false, false]);
    await until(() => keepalive().every(Boolean), 2000);
    expect(keepalive()).toEqual([true, true]);
  });

  it('rejects listen() with EADDRINUSE', async () => {
    const taken = await backend(() => {});
    const p = new TcpProxy({ id: 'x', host: '127.0.0.1', port: taken.port, pick: () => ({ error: 'none' }) });
    await expect(p.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await p.closeAll();
  });

  it('leaks neither connections nor file descriptors over 200 mixed connections', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const echo = await backend((s) => s.pipe(s));
    const replyAfterFin = await backend((s) => {
      s.resume();
      s.on('end', () => s.end('r'));
    });
    const resetting = await backend((s) => s.resetAndDestroy());
    // Never sends FIN: its sockets stay open in this process until the end.
    const silentSockets: Socket[] = [];
    const silent = await backend((s) => silentSockets.push(s.resume()));
    const dead = await deadPort();
    const kinds = [echo.endpoint, replyAfterFin.endpoint, resetting.endpoint, silent.endpoint, `127.0.0.1:${dead}`];
    const baseline = fds();
    let k = 0;
    const { p, events } = await proxy({ dialTimeoutsMs: [100], halfCloseTimeoutMs: 50, pick: () => ({ endpoint: kinds[k++ % kinds.length]! }) });
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const s = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: i % 3 === 0 });
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.on('data', () => {});
        s.on('connect', () => {
          if (i % 7 === 6) {
            s.write('x');
            setTimeout(() => s.resetAndDestroy(), 5);
          } else s.end('payload');
        });
      });
    for (let batch = 0; batch < 10; batch++) {
      const running: Promise<void>[] = [];
      for (let j = 0; j < 20; j++) {
        running.push(one(batch * 20 + j));
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(running);
    }
    await until(() => p.activeConnections === 0 && closedOf(events).length === 200);
    const reasons = new Set(closedOf(events).map((e) => (e.type === 'closed' ? e.reason : '')));
    expect(reasons).toEqual(new Set(['done', 'error', 'dial failed', 'half-close timeout']));
    for (const s of silentSockets) s.destroy();
    await until(() => fds() <= baseline + 5);
  });
});
