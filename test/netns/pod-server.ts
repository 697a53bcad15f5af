/**
 * A pod's workload in the end-to-end tests, run inside the pod's network
 * namespace:
 *
 *   ip netns exec POD node test/netns/pod-server.ts --name POD --ip 10.244.1.2 --tcp 80,8080 --udp 53 [--echo 9000]
 *
 * Every TCP connection (after the client's first line, or its half-close)
 * and every UDP datagram is answered with one JSON line
 *   {"pod":"POD","client":"<src ip>:<src port>","local":"<dst ip>:<dst port>"}
 * (IPv6 addresses in brackets: "[fd00::2]:80"); TCP connections are then
 * closed. --echo ports copy TCP bytes back until the client closes (bulk
 * transfers). UDP sockets bind each --ip (plus loopback) so that "local" is
 * the address the datagram was sent to; without --ip they bind the wildcard.
 * Prints "ready" on stdout once every listener is bound; exits 1 with a
 * message on stderr when one cannot be bound.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    ip: { type: 'string', default: '' },
    tcp: { type: 'string', default: '' },
    udp: { type: 'string', default: '' },
    echo: { type: 'string', default: '' },
  },
});

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
function ports(text: string, flag: string): number[] {
  return list(text).map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`--${flag}: not a port: ${JSON.stringify(p)}`);
    return n;
  });
}
function hostPort(ip: string | undefined, port: number | undefined): string {
  const bare = (ip ?? '?').replace(/^::ffff:(?=\d+\.)/, '');
  return isIPv6(bare) ? `[${bare}]:${port}` : `${bare}:${port}`;
}

const name = values.name;
if (name === undefined || name === '') throw new Error('--name is required');
const ips = list(values.ip);
const udpAddresses = ips.length === 0 ? ['0.0.0.0', '::'] : [...ips, '127.0.0.1', ...(ips.some(isIPv6) ? ['::1'] : [])];
const tcpAddresses = ips.some(isIPv6) || ips.length === 0 ? ['0.0.0.0', '::'] : ['0.0.0.0'];

function answer(local: string, client: string): string {
  return `${JSON.stringify({ pod: name, client, local })}\n`;
}

function onTcp(socket: Socket): void {
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  let buffered = '';
  let answered = false;
  const reply = (): void => {
    if (answered) return;
    answered = true;
    socket.end(answer(hostPort(socket.localAddress, socket.localPort), hostPort(socket.remoteAddress, socket.remotePort)));
  };
  socket.on('data', (chunk) => {
    buffered += chunk.toString('latin1');
    if (buffered.includes('\n')) reply();
    else if (buffered.length > 65536) socket.destroy();
  });
  socket.on('end', reply);
}

function onEcho(socket: Socket): void {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
}

async function listenTcp(port: number, host: string, handler: (s: Socket) => void): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: isIPv6(host), backlog: 1024 }, () => resolve());
  });
  return server;
}

async function bindUdp(port: number, host: string): Promise<UdpSocket> {
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
  socket.on('message', (_msg, rinfo) => {
    socket.send(answer(hostPort(host, port), hostPort(rinfo.address, rinfo.port)), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address: host }, () => resolve());
  });
  socket.on('error', () => undefined);
  return socket;
}

try {
  const closers: (() => void)[] = [];
  for (const port of ports(values.tcp, 'tcp')) {
    for (const host of tcpAddresses)
      closers.push(
        (
          (s) => () =>
            s.close()
        )(await listenTcp(port, host, onTcp)),
      );
  }
  for (const port of ports(values.echo, 'echo')) {
    for (const host of tcpAddresses)
      closers.push(
        (
          (s) => () =>
            s.close()
        )(await listenTcp(port, host, onEcho)),
      );
  }
  for (const port of ports(values.udp, 'udp')) {
    for (const host of udpAddresses)
      closers.push(
        (
          (s) => () =>
            s.close()
        )(await bindUdp(port, host)),
      );
  }
  process.on('SIGTERM', () => {
    for (const close of closers) close();
    process.exit(0);
  });
  process.stdout.write('ready\n');
} catch (err) {
  process.stderr.write(`pod-server ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
