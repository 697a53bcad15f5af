/**
 * Holds node ports open (upstream's claimNodePort, PR #9999): a listening TCP
 * socket or a bound UDP socket on every address, never served, so that no
 * other process can take a port kube-proxy has promised to a Service; `ss`
 * shows who owns it. A port another process already holds is a conflict,
 * reported and retried at the next sync, not stolen.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';

export interface HeldPort {
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

type Handle = { close(): Promise<void> };

async function holdTcp(port: number, host: string): Promise<Handle> {
  const server: Server = createServer((s) => s.destroy());
  server.listen({ port, host, exclusive: true });
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  return { close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function holdUdp(port: number, host: string, type: 'udp4' | 'udp6'): Promise<Handle> {
  const socket: UdpSocket = createSocket({ type, reuseAddr: false });
  socket.on('message', () => {});
  socket.bind({ port, address: host, exclusive: true });
  await Promise.race([once(socket, 'listening'), once(socket, 'error').then(([e]) => Promise.reject(e as Error))]);
  return { close: () => new Promise<void>((r) => socket.close(() => r())) };
}

/** What the userspace mode needs of a node port holder (NodePortHolder binds the ports; tests swap in one that binds none). */
export interface PortHolder {
  /** Holds exactly these ports; returns the conflicts (port in use by someone else) by "port/PROTO". */
  reconcile(wanted: readonly HeldPort[]): Promise<Map<string, string>>;
  has(port: number, protocol: 'TCP' | 'UDP'): boolean;
  closeAll(): Promise<void>;
}

export class NodePortHolder implements PortHolder {
  private readonly held = new Map<string, Handle>();
  private readonly host: string;
  private readonly udpType: 'udp4' | 'udp6';

  constructor(opts: { family: 'IPv4' | 'IPv6'; host?: string }) {
    this.host = opts.host ?? (opts.family === 'IPv4' ? '0.0.0.0' : '::');
    this.udpType = opts.family === 'IPv4' ? 'udp4' : 'udp6';
  }

  /** Holds exactly these ports; returns the conflicts (port in use by someone else) by "port/PROTO". */
  async reconcile(wanted: readonly HeldPort[]): Promise<Map<string, string>> {
    const keys = new Map(wanted.map((w) => [`${w.port}/${w.protocol}`, w]));
    for (const [key, h] of this.held) {
      if (keys.has(key)) continue;
      this.held.delete(key);
      await h.close();
    }
    const conflicts = new Map<string, string>();
    for (const [key, w] of keys) {
      if (this.held.has(key)) continue;
      try {
        this.held.set(key, w.protocol === 'TCP' ? await holdTcp(w.port, this.host) : await holdUdp(w.port, this.host, this.udpType));
      } catch (err) {
        conflicts.set(key, `can't open node port ${key}: ${(err as Error).message}`);
      }
    }
    return conflicts;
  }

  has(port: number, protocol: 'TCP' | 'UDP'): boolean {
    return this.held.has(`${port}/${protocol}`);
  }

  async closeAll(): Promise<void> {
    for (const h of this.held.values()) await h.close();
    this.held.clear();
  }
}
