/**
 * The floor of a TCP proxy written on Node's `net` module, for the
 * benchmark: `node bare-proxy.ts LISTEN_BASE TARGET_BASE` opens four
 * listeners on 127.0.0.1:LISTEN_BASE+i, each piping every accepted
 * connection to 127.0.0.1:TARGET_BASE+i and back (half-open allowed, as the
 * bulk test's FIN-then-reply needs), with nothing else: no balancer, events,
 * metrics, timers or retries, and Node's own read path (a fresh 64 KiB
 * buffer per read of either socket). Per connection, kube-proxy-ts's
 * TcpProxy does this plus its features, so this process's connection rate
 * bounds what a Node proxy of that shape can reach on the machine; per byte,
 * the TcpProxy reads both sockets into buffers it reuses (onread), which
 * this pipe does not, so its bulk figures are the floor of the plain `net`
 * pipe, not of the TcpProxy. Prints "ready".
 */
import net from 'node:net';

const [listenBase, targetBase] = process.argv.slice(2).map(Number) as [number, number];
let ready = 0;
for (let i = 0; i < 4; i++) {
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetBase + i, noDelay: true, allowHalfOpen: true });
    client.pipe(upstream).on('error', () => client.destroy());
    upstream.pipe(client).on('error', () => upstream.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(listenBase + i, '127.0.0.1', () => {
    if (++ready === 4) console.log('ready');
  });
}
