/**
 * The backend of the userspace proxy benchmark, run inside the benchmark's
 * namespace: `node server.ts PORT` listens on 127.0.0.1 at
 *   PORT     sink: reads until the client's FIN, answers with the byte count;
 *   PORT+1   rate: answers "ok" and closes at once (connections per second);
 *   PORT+2   echo: copies bytes back (round-trip latency);
 *   PORT+3   source: streams 256 KiB writes until the client closes (download throughput).
 * Prints "ready" once all three listen.
 */
import { createServer, type Socket } from 'node:net';

const base = Number(process.argv[2]);
const servers = [
  (s: Socket) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`${n}\n`));
  },
  (s: Socket) => s.end('ok\n'),
  (s: Socket) => s.pipe(s),
  (s: Socket) => {
    const chunk = Buffer.alloc(256 * 1024, 7);
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk));
    };
    s.on('drain', pump);
    pump();
  },
];
let ready = 0;
servers.forEach((handler, i) => {
  const server = createServer({ noDelay: true }, (s) => {
    s.on('error', () => s.destroy());
    handler(s);
  });
  server.listen({ host: '127.0.0.1', port: base + i, backlog: 4096 }, () => {
    if (++ready === servers.length) process.stdout.write('ready\n');
  });
});
