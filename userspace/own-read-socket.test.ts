import { connect, createServer, Socket, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ownReadSocket } from './own-read-socket.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A paused-on-connect server whose accepted sockets go through ownReadSocket; resolves with its port. */
async function pausedServer(onSocket: (shell: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as { port: number }).port };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ownReadSocket', () => {
  it('re-makes an accepted socket to read into the given buffer, paused until resumed, half-open', async () => {
    const buf = Buffer.alloc(1024);
    const reads: string[] = [];
    let adopted: Socket | null = null;
    let shell: Socket | null = null;
    const ended = Promise.withResolvers<void>();
    const { server, port } = await pausedServer((s) => {
      shell = s;
      adopted = ownReadSocket(s, { buffer: buf, callback: (n, b) => (reads.push(Buffer.from(b.subarray(0, n)).toString()), true) }, true);
      adopted.on('end', () => ended.resolve());
      cleanups.push(() => adopted!.destroy());
    });
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => c.destroy());
    const replies: Buffer[] = [];
    c.on('data', (d: Buffer) => replies.push(d));
    c.write('abc');
    await wait(100);
    expect(adopted).not.toBe(shell);
    expect(adopted!.remotePort).toBe(c.localPort);
    // Paused: nothing read yet.
    expect(reads).toEqual([]);
    // The shell gave up its handle: it is destroyed, the server counts no connection, the connection is open.
    expect(shell!.destroyed).toBe(true);
    expect(await new Promise((r) => server.getConnections((_, n) => r(n)))).toBe(0);
    adopted!.resume();
    c.end('def');
    await ended.promise;
    expect(reads.join('')).toBe('abcdef');
    // The client's FIN did not close our side: the reply still goes out.
    adopted!.end('reply');
    await new Promise((r) => c.on('end', r));
    expect(Buffer.concat(replies).toString()).toBe('reply');
    expect(adopted!.bytesRead).toBe(6);
  });

  it('returns a socket without a handle to give as it is (the caller reads its data events)', () => {
    const s = new Socket();
    expect(ownReadSocket(s, { buffer: Buffer.alloc(16), callback: () => true }, true)).toBe(s);
  });
});
