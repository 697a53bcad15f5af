/**
 * Benchmark of the `render` CLI path as a user runs it (`npm run bench:render`,
 * as root; everything that loads rules runs in network namespaces this script
 * creates and removes): N services with 5 endpoints each (default 10,000) in
 * one JSON objects file, as `kubectl get -o json` writes it, then per
 * repetition, targets in an order rotated per repetition:
 *   restore alone       `iptables-<backend>-restore < text` into a fresh namespace (the text render printed)
 *   render | restore    `kube-proxy-ts render ... | iptables-<backend>-restore` into a fresh namespace
 *   render alone        `kube-proxy-ts render ... > /dev/null`
 *   render, to its first byte   the same, timed until its first byte (first-byte.ts)
 * and, with BENCH_RENDER_BEFORE=/path/to/other/src/main.ts, the same two
 * render targets for that other checkout. The restore reads a whole ruleset
 * without --noflush (a fresh namespace has nothing to keep; iptables-nft
 * 1.8.9's --noflush is quadratic in one input, > 3 minutes at 10,000).
 * Wall time and the CPU time of the pipeline's processes (what a loaded,
 * shared machine does not inflate) are both printed; ratios are per
 * repetition pair, as median (min-max).
 *
 * Environment: BENCH_RENDER_SERVICES (default 10000), BENCH_REPS (default 5),
 * BENCH_BACKENDS (default nft).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';
import { endpointIP, serviceIP } from './cluster-objects.ts';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

const N = Number(process.env['BENCH_RENDER_SERVICES'] ?? 10_000);
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
const backends = (process.env['BENCH_BACKENDS'] ?? 'nft').split(',');
const BEFORE = process.env['BENCH_RENDER_BEFORE'];
/** The executable as installed (package.json "bin", the image's ENTRYPOINT): src/entry.js, compile cache on before any TypeScript. */
const MAIN = new URL('../src/entry.js', import.meta.url).pathname;
const FIRST_BYTE = new URL('./first-byte.ts', import.meta.url).pathname;
const NS = `kptbench-render-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'kpt-render-bench-'));
const objects = join(dir, 'objects.json');
const text = join(dir, 'rules.txt');

function writeObjects(n: number): void {
  const items: unknown[] = [makeNode('bench-node', { addresses: ['192.168.0.2'] })];
  for (let i = 0; i < n; i++) {
    items.push(makeService('bench', `svc-${i}`, { clusterIP: serviceIP(i), ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }));
    items.push(
      makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
        endpoints: Array.from({ length: 5 }, (_, j) => ({ ip: endpointIP(i, j), nodeName: j === 0 ? 'bench-node' : 'other' })),
        ports: [{ name: 'p80', port: 8080 }],
      }),
    );
  }
  writeFileSync(objects, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2));
}

const renderCmd = (main: string): string =>
  `${process.execPath} --max-semi-space-size=2 ${main} render --objects ${objects} --hostname-override bench-node --cluster-cidr 10.0.0.0/8 --ip-family IPv4`;

interface Timing {
  readonly wallMs: number;
  /** CPU time (user + system) of every process of the pipeline: what the shared cores' load does not inflate. */
  readonly cpuMs: number;
}

/** Wall and CPU time of a shell pipeline (in a fresh namespace when `inNs`); throws on failure. */
function timed(cmd: string, inNs: boolean): Timing {
  if (inNs) spawnSync('ip', ['netns', 'add', NS]);
  try {
    // bash's `times` prints the CPU of its finished children: "0m1.234s 0m0.567s" (user, system) on its second line.
    const script = `${cmd}\ntimes >&2`;
    const t0 = performance.now();
    const r = inNs
      ? spawnSync('ip', ['netns', 'exec', NS, 'bash', '-o', 'pipefail', '-c', script])
      : spawnSync('bash', ['-o', 'pipefail', '-c', script]);
    const wallMs = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr.toString().slice(-500)}`);
    const children = r.stderr.toString().trim().split('\n').at(-1)!;
    const cpuMs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + (Number(m[1]) * 60 + Number(m[2])) * 1000, 0);
    return { wallMs, cpuMs };
  } finally {
    if (inNs) spawnSync('ip', ['netns', 'del', NS]);
  }
}

/** Wall and CPU time of `render` until it writes its first byte (first-byte.ts): the part no reader can overlap. */
function firstByte(main: string): Timing {
  const r = spawnSync(process.execPath, [FIRST_BYTE, ...renderCmd(main).split(' ')]);
  if (r.status !== 0) throw new Error(`first-byte.ts: exit ${r.status}: ${r.stderr.toString().slice(-500)}`);
  return JSON.parse(r.stdout.toString()) as Timing;
}

writeObjects(N);
spawnSync('bash', ['-c', `${renderCmd(MAIN)} > ${text}`]);
console.log(
  `render CLI benchmark: ${N} services x 5 endpoints, objects file ${(statSync(objects).size / 1e6).toFixed(1)} MB, restore text ${(statSync(text).size / 1e6).toFixed(1)} MB; ${REPS} repetitions, targets rotated; load average ${spawnSync('cat', ['/proc/loadavg']).stdout.toString().split(' ').slice(0, 3).join(' ')}`,
);
try {
  for (const backend of backends) {
    const restore = `iptables-${backend}-restore`;
    const targets: Record<string, () => Timing> = {
      'restore alone': () => timed(`${restore} < ${text}`, true),
      'render | restore': () => timed(`${renderCmd(MAIN)} | ${restore}`, true),
      'render alone': () => timed(`${renderCmd(MAIN)} > /dev/null`, false),
      'render, to its first byte': () => firstByte(MAIN),
    };
    if (BEFORE) {
      targets['before: render | restore'] = () => timed(`${renderCmd(BEFORE)} | ${restore}`, true);
      targets['before: render alone'] = () => timed(`${renderCmd(BEFORE)} > /dev/null`, false);
      targets['before: render, to its first byte'] = () => firstByte(BEFORE);
    }
    const runs: Record<string, Timing[]> = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    for (let rep = 0; rep < REPS; rep++) for (const name of rotate(Object.keys(targets), rep)) runs[name]!.push(targets[name]!());
    const of = (name: string, k: keyof Timing): number[] => runs[name]!.map((t) => t[k]);
    console.log(`\n${restore}: ms, median (min-max)\n  ${''.padEnd(34)} ${'wall'.padEnd(26)} CPU (user + system)`);
    for (const name of Object.keys(runs))
      console.log(`  ${name.padEnd(34)} ${fmt(summarize(of(name, 'wallMs'))).padEnd(26)} ${fmt(summarize(of(name, 'cpuMs')))}`);
    const ratio = (a: string, b: string): void => {
      if (!runs[a] || !runs[b]) return;
      const wall = fmt(summarize(pairedRatios(of(a, 'wallMs'), of(b, 'wallMs'))), 2);
      console.log(`  ${`${a} / ${b}`.padEnd(52)} ${wall.padEnd(20)} ${fmt(summarize(pairedRatios(of(a, 'cpuMs'), of(b, 'cpuMs'))), 2)}`);
    };
    console.log(`ratios per repetition, median (min-max)\n  ${''.padEnd(52)} ${'wall'.padEnd(20)} CPU`);
    ratio('render | restore', 'restore alone');
    ratio('before: render | restore', 'restore alone');
    ratio('render alone', 'before: render alone');
    // What the ratio cannot go below while the restore waits for render's first byte.
    const floor = (first: string, k: keyof Timing): string => fmt(summarize(pairedRatios(of(first, k), of('restore alone', k)).map((x) => 1 + x)), 2);
    for (const [label, first] of [
      ['floor: 1 + render to its first byte / restore alone', 'render, to its first byte'],
      ['before: the same floor', 'before: render, to its first byte'],
    ] as const) {
      if (runs[first]) console.log(`  ${label.padEnd(52)} ${floor(first, 'wallMs').padEnd(20)} ${floor(first, 'cpuMs')}`);
    }
  }
} finally {
  spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
}
