/**
 * The cluster the retention tests measure (iptables/render-retention.test.ts,
 * nftables/retained-memory.test.ts, proxier/retained-state.test.ts,
 * src/sources/retained-fields.test.ts): `n` services of one port with 5 endpoints
 * each (the first on this node), as raw objects, and a child process that
 * reports the heap after full collections. Retention is measured in a child
 * started with --expose-gc, so that the test runner's own heap does not move
 * the figures, and with --single-threaded: V8's background threads (concurrent
 * marking and sweeping, the optimizing compilers) finish their work when the
 * machine's load lets them, and what they had finished moved a reading by up to
 * ~225 bytes per port under load (1,935 once on CI where every run here reads
 * 1,710; a 1 MB jump once in the nftables test). On the main thread alone the
 * same code reads the same figure in every run, idle or beside busy loops.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';

export const RETENTION_NODE = 'node';

export function retentionCluster(n: number): { services: unknown[]; slices: unknown[]; node: unknown } {
  const services: unknown[] = [];
  const slices: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const ip = (j: number) => `10.${(i >> 8) & 255}.${i & 255}.${j}`;
    services.push(
      makeService('ns', `svc-${i}`, { clusterIP: `172.20.${(i >> 8) & 255}.${i & 255}`, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
    );
    slices.push(
      makeEndpointSlice('ns', `svc-${i}`, `svc-${i}-s`, {
        endpoints: [1, 2, 3, 4, 5].map((j) => ({ ip: ip(j), nodeName: j === 1 ? RETENTION_NODE : 'other' })),
        ports: [{ name: 'p80', port: 8080 }],
      }),
    );
  }
  return { services, slices, node: makeNode(RETENTION_NODE, { addresses: ['192.168.0.2'] }) };
}

/**
 * Runs `body` (module code) in a child with --expose-gc after a prelude that
 * defines `heap()` (heap used after two full collections), `cluster` (raw
 * objects of `n` services) and `snapshot` (their IPv4 desired state), and
 * parses the JSON line it prints. `imports` are module specifiers relative
 * to the repository's root, imported as `{ names } from path` lines.
 */
export async function measureInChild<T>(n: number, imports: readonly string[], body: string): Promise<T> {
  const root = new URL('..', import.meta.url);
  const url = (path: string) => JSON.stringify(new URL(path, root).href);
  const script = [
    `import { buildSnapshots } from ${url('proxier/snapshot.ts')};`,
    `import { retentionCluster, RETENTION_NODE } from ${url('test/retention-cluster.ts')};`,
    ...imports.map((line) => line.replace(/from '([^']+)'/, (_, p: string) => `from ${url(p)}`)),
    `const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);`,
    `const n = ${n};`,
    `const cluster = retentionCluster(n);`,
    `const buildSnapshot = () => buildSnapshots(cluster, { nodeName: RETENTION_NODE, families: ['IPv4'], features: { preferSameTrafficDistribution: true } }).snapshots[0];`,
    body,
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--single-threaded', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(root),
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}
