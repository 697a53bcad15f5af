/**
 * kube-proxy-ts's userspace TCP proxy alone, as the agent runs one per
 * service port, for the benchmark: `node proxy.ts LISTEN_BASE TARGET_BASE`
 * opens three TcpProxy listeners on 127.0.0.1:LISTEN_BASE+i forwarding to
 * 127.0.0.1:TARGET_BASE+i. Prints "ready".
 */
import { TcpProxy } from '../../userspace/tcp-proxy.ts';

const listen = Number(process.argv[2]);
const target = Number(process.argv[3]);
for (let i = 0; i < 3; i++) {
  const proxy = new TcpProxy({
    id: `bench/p${i}:tcp/TCP/${listen + i}`,
    host: '127.0.0.1',
    port: listen + i,
    pick: () => ({ endpoint: `127.0.0.1:${target + i}` }),
  });
  await proxy.listen();
}
process.stdout.write('ready\n');
