/**
 * kube-proxy-ts's userspace TCP proxy alone, as the agent runs one per
 * service port, for the benchmark: `node proxy.ts LISTEN_BASE TARGET_BASE
 * [--workers N]` opens four TcpProxy listeners on 127.0.0.1:LISTEN_BASE+i
 * forwarding to 127.0.0.1:TARGET_BASE+i, with the agent's event handler
 * (the userspace metrics, prom-client counters per service port). With
 * --workers N (N > 0) the listeners run in N worker threads instead, each
 * with its own TcpProxy on the same ports (SO_REUSEPORT; the kernel spreads
 * connections): the design measured against the single thread. With
 * --retain-mb N the process first builds and keeps N MiB of small objects,
 * standing in for the agent's informer caches at a large cluster (what a
 * garbage collection of the agent's heap has to mark). Prints "ready".
 */
import { Registry } from 'prom-client';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { TcpProxy } from '../../userspace/tcp-proxy.ts';
import { createUserspaceMetrics, userspaceEventMetrics } from '../../src/servers/userspace-metrics.ts';

interface Spec {
  listen: number;
  target: number;
  workers: number;
}

function option(name: string): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : 0;
}

/** About `mb` MiB of live objects shaped like informer cache entries. */
function retain(mb: number): unknown[] {
  const keep: unknown[] = [];
  for (let i = 0; i < mb * 4000; i++)
    keep.push({ name: `svc-${i}`, namespace: 'default', ports: [{ port: 80, protocol: 'TCP' }], ip: `10.0.${i & 255}.${(i >> 8) & 255}` });
  return keep;
}

async function serve(spec: Spec): Promise<void> {
  const onEvent = userspaceEventMetrics(createUserspaceMetrics(new Registry()));
  for (let i = 0; i < 4; i++) {
    const service = `bench/p${i}:tcp`;
    const proxy = new TcpProxy({
      id: `${service}/TCP/${spec.listen + i}`,
      host: '127.0.0.1',
      port: spec.listen + i,
      reusePort: spec.workers > 0,
      pick: () => ({ endpoint: `127.0.0.1:${spec.target + i}` }),
      onEvent: (e) => onEvent(service, e),
    });
    await proxy.listen();
  }
}

if (isMainThread) {
  const spec: Spec = { listen: Number(process.argv[2]), target: Number(process.argv[3]), workers: option('--workers') };
  const kept = retain(option('--retain-mb'));
  (globalThis as { retained?: unknown }).retained = kept; // alive for the whole run, as informer caches are
  if (spec.workers > 0) {
    await Promise.all(
      Array.from(
        { length: spec.workers },
        () =>
          new Promise((resolve, reject) => new Worker(new URL(import.meta.url), { workerData: spec }).once('message', resolve).once('error', reject)),
      ),
    );
  } else await serve(spec);
  process.stdout.write(`ready (${kept.length} objects kept, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB)\n`);
} else {
  await serve(workerData as Spec);
  parentPort!.postMessage('ready');
}
