import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { NodePortHolder } from './port-holder.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('NodePortHolder', () => {
  it('holds TCP and UDP node ports so nothing else can bind them, and lets them go', async () => {
    const holder = new NodePortHolder({ family: 'IPv4', host: '127.0.0.1' });
    const port = await freePort();
    expect(
      await holder.reconcile([
        { port, protocol: 'TCP' },
        { port, protocol: 'UDP' },
      ]),
    ).toEqual(new Map());
    const intruder = createServer();
    await expect(
      new Promise((resolve, reject) => intruder.once('error', reject).listen(port, '127.0.0.1', () => resolve(null))),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const udp = createSocket('udp4');
    await expect(new Promise((resolve, reject) => udp.once('error', reject).bind(port, '127.0.0.1', () => resolve(null)))).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    udp.close();
    await holder.reconcile([]);
    await new Promise<void>((resolve, reject) => intruder.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    intruder.close();
  });

  it('reports a port another process holds instead of stealing it', async () => {
    const port = await freePort();
    const other = createServer();
    await new Promise<void>((r) => other.listen(port, '127.0.0.1', () => r()));
    const holder = new NodePortHolder({ family: 'IPv4', host: '127.0.0.1' });
    const conflicts = await holder.reconcile([{ port, protocol: 'TCP' }]);
    expect(conflicts.get(`${port}/TCP`)).toMatch(/can't open node port .*EADDRINUSE/);
    expect(holder.has(port, 'TCP')).toBe(false);
    other.close();
    await holder.closeAll();
  });
});
