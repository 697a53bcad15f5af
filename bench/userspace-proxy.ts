/**
 * Benchmark of the userspace proxy (run: `npm run bench:userspace`, as root).
 * In a network namespace this script creates and removes, one backend
 * (bench/userspace-proxy/server.ts) is reached several ways on the same
 * loopback path:
 *   direct                 client -> backend
 *   userspace              client -> kube-proxy-ts TcpProxy, as the agent runs it (one thread, its
 *                          metrics, its V8 flags) -> backend
 *   userspace (2 workers)  the same in 2 worker threads sharing each port with SO_REUSEPORT
 *   haproxy (1 thread)     client -> HAProxy `mode tcp` (Debian package), nbthread 1 -> backend
 *   haproxy (default)      the same with HAProxy's default threads (one per core)
 *   node floor             client -> a bare Node `net` pipe proxy (userspace-proxy/bare-proxy.ts: no
 *                          balancer, metrics, timers or events, Node's own read buffers) -> backend: what a
 *                          Node proxy of the TcpProxy's shape can reach here per connection, printed beside
 *                          the goals as their floor
 * Four tests: bulk (one connection streaming 256 KiB writes to the backend),
 * down (one connection reading what the backend streams), conn/s (16
 * concurrent connect / read "ok" / close loops) and round-trip latency
 * (64-byte ping-pong). Each test runs BENCH_REPS times (default 5); within a
 * repetition every target runs once, in an order rotated per repetition, so
 * the ratios (userspace / haproxy, userspace / direct) are taken per
 * repetition pair and reported as median (min-max). Besides throughput, the
 * CPU time of each proxy process per connection and per GB is read from
 * /proc: it does not depend on how the shared cores were divided.
 *
 * Environment: BENCH_SECONDS (per measurement, default 2), BENCH_REPS,
 * BENCH_TESTS (comma list of bulk,rate,latency), BENCH_TARGETS (comma list
 * of target names; direct and haproxy (1 thread) always run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, pairedRatios, rotate, summarize } from './stats.ts';

const NS = `kptbench-us-${process.pid}`;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const TESTS = (process.env.BENCH_TESTS ?? 'bulk,down,rate,latency').split(',') as Test[];
const DIR = new URL('./userspace-proxy/', import.meta.url).pathname;
const BACKEND = 20000;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

type Test = 'bulk' | 'down' | 'rate' | 'latency';
/** The backend listens on BACKEND + offset for each test (bench/userspace-proxy/server.ts). */
const OFFSET: Record<Test, number> = { bulk: 0, rate: 1, latency: 2, down: 3 };
const PORTS = 4;
interface Target {
  readonly name: string;
  readonly port: number;
  /** Starts the process serving the target (none for direct). */
  readonly start?: () => Promise<ChildProcess>;
  pid?: number | undefined;
}

const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'kptbench-us-'));

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function cleanup(): void {
  for (const c of children) c.kill('SIGKILL');
  spawnSync('ip', ['netns', 'del', NS]);
  rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGINT', () => (cleanup(), process.exit(130)));
process.on('SIGTERM', () => (cleanup(), process.exit(143)));

function start(cmd: string, args: string[], waitFor: RegExp | null): Promise<ChildProcess> {
  // `ip netns exec` execs the command in place: the child's pid is the command's.
  const child = spawn('ip', ['netns', 'exec', NS, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  if (!waitFor) return new Promise((r) => setTimeout(() => r(child), 300));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${out}`)), 10_000);
    const on = (d: Buffer): void => {
      out += d.toString();
      if (waitFor.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`${cmd} exited ${code}: ${out}`)));
  });
}

function haproxyConfig(listen: number, threads: number | null): string {
  const lines = [
    'global',
    '  maxconn 4000',
    ...(threads ? [`  nbthread ${threads}`] : []),
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
  ];
  for (let i = 0; i < PORTS; i++) lines.push(`listen p${i}`, `  bind 127.0.0.1:${listen + i}`, `  server s 127.0.0.1:${BACKEND + i}`);
  return `${lines.join('\n')}\n`;
}

function haproxy(listen: number, threads: number | null): () => Promise<ChildProcess> {
  return () => {
    const cfg = join(tmp, `${listen}.cfg`);
    writeFileSync(cfg, haproxyConfig(listen, threads));
    return start('haproxy', ['-f', cfg, '-db'], null);
  };
}

function userspace(listen: number, workers: number): () => Promise<ChildProcess> {
  // The agent's V8 flags (src/main.ts's shebang).
  const args = ['--max-semi-space-size=2', join(DIR, 'proxy.ts'), String(listen), String(BACKEND), '--workers', String(workers)];
  return () => start(process.execPath, args, /ready/);
}

const TARGETS: Target[] = [
  { name: 'direct', port: BACKEND },
  { name: 'userspace', port: 21000, start: userspace(21000, 0) },
  { name: 'userspace (2 workers)', port: 25000, start: userspace(25000, 2) },
  { name: 'haproxy (1 thread)', port: 22000, start: haproxy(22000, 1) },
  { name: 'haproxy (default threads)', port: 23000, start: haproxy(23000, null) },
  {
    name: 'node floor',
    port: 24000,
    start: () => start(process.execPath, ['--max-semi-space-size=2', join(DIR, 'bare-proxy.ts'), '24000', String(BACKEND)], /ready/),
  },
  // Experiments: BENCH_VARIANTS="name=--node-flag script.ts arg ...;name2=..." adds targets (the script gets LISTEN_BASE TARGET_BASE args).
  ...(process.env.BENCH_VARIANTS ?? '')
    .split(';')
    .filter(Boolean)
    .map((v, i) => {
      const name = v.slice(0, v.indexOf('='));
      const cmd = v.slice(v.indexOf('=') + 1);
      const words = cmd.split(' ');
      const at = words.findIndex((w) => w.endsWith('.ts'));
      const [flags, script, args] = [words.slice(0, at), words[at], words.slice(at + 1)];
      const port = 30000 + 1000 * i;
      return { name, port, start: () => start(process.execPath, [...flags, script!, String(port), String(BACKEND), ...args], /ready/) };
    }),
];
const only = process.env.BENCH_TARGETS?.split(',');
const targets = only
  ? TARGETS.filter(
      (t) => only.includes(t.name) || t.name === 'direct' || t.name === 'haproxy (1 thread)' || t.name === 'node floor' || t.port >= 30000,
    )
  : TARGETS;

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

interface Sample {
  /** bytes/s (bulk), connections/s (rate), or p50 round trip in µs (latency). */
  readonly value: number;
  readonly p99?: number;
  /** The target process's CPU seconds during the measurement. */
  readonly cpu: number;
  /** Units done: bytes (bulk), connections (rate), round trips (latency). */
  readonly units: number;
}

function client(test: Test, target: Target): Sample {
  const port = target.port + OFFSET[test];
  const cpu0 = cpuSeconds(target.pid);
  const r = spawnSync(
    'ip',
    ['netns', 'exec', NS, process.execPath, join(DIR, 'client.ts'), JSON.stringify({ kind: test, port, seconds: SECONDS, concurrency: 16 })],
    { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 },
  );
  const cpu = cpuSeconds(target.pid) - cpu0;
  if (r.status !== 0) throw new Error(`client ${test} ${target.name}: ${r.stderr}`);
  const o = JSON.parse(r.stdout.trim()) as Record<string, number>;
  if (test === 'bulk' || test === 'down') return { value: o.bytesPerSecond!, cpu, units: o.bytes! };
  if (test === 'rate') return { value: o.perSecond!, cpu, units: o.connections! };
  return { value: o.p50us!, p99: o.p99us!, cpu, units: o.roundTrips! };
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function main(): Promise<void> {
  if (!sh('haproxy', ['-v'])) throw new Error('haproxy is not installed (apt-get install haproxy)');
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  await start(process.execPath, [join(DIR, 'server.ts'), String(BACKEND)], /ready/);
  for (const t of targets) if (t.start) t.pid = (await t.start()).pid;
  const load0 = loadAverage();
  const samples = new Map<string, Sample[]>();
  const key = (test: Test, t: Target): string => `${test}/${t.name}`;
  for (let rep = 0; rep < REPS; rep++) {
    for (const test of TESTS) {
      for (const t of rotate(targets, rep)) {
        const list = samples.get(key(test, t)) ?? [];
        list.push(client(test, t));
        samples.set(key(test, t), list);
      }
    }
  }
  const values = (test: Test, name: string): number[] => (samples.get(`${test}/${name}`) ?? []).map((s) => s.value);
  console.log(
    `userspace proxy benchmark: ${REPS} repetitions x ${SECONDS} s per measurement, targets interleaved, loopback in namespace ${NS}, ${spawnSync('nproc').stdout.toString().trim()} cores shared by client, backend and proxy; load average ${load0} before, ${loadAverage()} after`,
  );
  console.log('median (min-max) of the repetitions');
  const head = ['target', 'bulk MB/s', 'down MB/s', 'conn/s', 'rtt p50 us', 'rtt p99 us', 'CPU us/conn', 'CPU ms/GB', 'CPU ms/GB down'];
  const rows = targets.map((t) => {
    const s = (test: Test): Sample[] => samples.get(key(test, t)) ?? [];
    const cpuPer = (test: Test, scale: number): string => (t.pid === undefined ? '-' : fmt(summarize(s(test).map((x) => (x.cpu / x.units) * scale))));
    return [
      t.name,
      fmt(summarize(s('bulk').map((x) => x.value / 1e6))),
      fmt(summarize(s('down').map((x) => x.value / 1e6))),
      fmt(summarize(s('rate').map((x) => x.value))),
      fmt(summarize(s('latency').map((x) => x.value))),
      fmt(summarize(s('latency').map((x) => x.p99 ?? NaN))),
      cpuPer('rate', 1e6),
      cpuPer('bulk', 1e12),
      cpuPer('down', 1e12),
    ];
  });
  printTable(head, rows);
  console.log('ratios per repetition pair, median (min-max)');
  const ratioRows: string[][] = [];
  for (const t of targets.filter((x) => x.name !== 'direct')) {
    for (const base of ['haproxy (1 thread)', 'direct']) {
      if (t.name === base) continue;
      ratioRows.push([
        `${t.name} / ${base}`,
        fmt(summarize(pairedRatios(values('bulk', t.name), values('bulk', base))), 2),
        fmt(summarize(pairedRatios(values('down', t.name), values('down', base))), 2),
        fmt(summarize(pairedRatios(values('rate', t.name), values('rate', base))), 2),
        fmt(summarize(pairedRatios(values('latency', t.name), values('latency', base))), 2),
      ]);
    }
  }
  printTable(['pair', 'bulk', 'down', 'conn/s', 'rtt p50'], ratioRows);
  const ratio = (test: Test, base: string): number => summarize(pairedRatios(values(test, 'userspace'), values(test, base))).median;
  const goals: [string, number, number][] = [
    ['bulk >= 1.0 x haproxy (1 thread)', ratio('bulk', 'haproxy (1 thread)'), 1],
    ['conn/s >= 1.0 x haproxy (1 thread)', ratio('rate', 'haproxy (1 thread)'), 1],
    ['bulk >= 0.5 x direct', ratio('bulk', 'direct'), 0.5],
  ];
  console.log(`goals (issue 13) at the median: ${goals.map(([g, v, min]) => `${g}: ${v.toFixed(2)} ${v >= min ? 'met' : 'NOT met'}`).join('; ')}`);
  if (targets.some((t) => t.name === 'node floor')) {
    const floor = (test: Test, base: string): number => summarize(pairedRatios(values(test, 'node floor'), values(test, base))).median;
    console.log(
      `the same ratios for the bare Node proxy (the floor of a Node net proxy): bulk / haproxy (1 thread) ${floor('bulk', 'haproxy (1 thread)').toFixed(2)}; conn/s / haproxy (1 thread) ${floor('rate', 'haproxy (1 thread)').toFixed(2)}; bulk / direct ${floor('bulk', 'direct').toFixed(2)}`,
    );
  }
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

try {
  await main();
} finally {
  cleanup();
}
