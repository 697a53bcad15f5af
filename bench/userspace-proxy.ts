/**
 * Benchmark of the userspace proxy (run: `npm run bench:userspace`, as root).
 * In a network namespace this script creates and removes, one backend
 * (bench/userspace-proxy/server.ts) is reached three ways on the same
 * loopback path, in one run:
 *   direct       client -> backend
 *   userspace    client -> kube-proxy-ts TcpProxy (one Node.js thread, as the agent) -> backend
 *   haproxy      client -> HAProxy `mode tcp` (Debian package), 1 thread and its default threads -> backend
 * and prints bulk throughput, connections per second and round-trip latency
 * for each, with the ratios. Goals (issue 4): at least 80% of HAProxy's bulk
 * throughput and half its connection rate.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NS = `kptbench-us-${process.pid}`;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const DIR = new URL('./userspace-proxy/', import.meta.url).pathname;
const BACKEND = 20000;
const TARGETS = { direct: BACKEND, userspace: 21000, 'haproxy (1 thread)': 22000, 'haproxy (default threads)': 23000 } as const;
type Target = keyof typeof TARGETS;

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
  for (let i = 0; i < 3; i++) lines.push(`listen p${i}`, `  bind 127.0.0.1:${listen + i}`, `  server s 127.0.0.1:${BACKEND + i}`);
  return `${lines.join('\n')}\n`;
}

function client(kind: 'bulk' | 'rate' | 'latency', port: number): Record<string, number> {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', NS, process.execPath, join(DIR, 'client.ts'), JSON.stringify({ kind, port, seconds: SECONDS, concurrency: 16 })],
    { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 },
  );
  if (r.status !== 0) throw new Error(`client ${kind} :${port}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Record<string, number>;
}

async function main(): Promise<void> {
  if (!sh('haproxy', ['-v'])) throw new Error('haproxy is not installed (apt-get install haproxy)');
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  await start(process.execPath, [join(DIR, 'server.ts'), String(BACKEND)], /ready/);
  await start(process.execPath, ['--max-semi-space-size=2', join(DIR, 'proxy.ts'), String(TARGETS.userspace), String(BACKEND)], /ready/);
  for (const [name, threads] of [
    ['haproxy (1 thread)', 1],
    ['haproxy (default threads)', null],
  ] as const) {
    const cfg = join(tmp, `${threads ?? 'default'}.cfg`);
    writeFileSync(cfg, haproxyConfig(TARGETS[name], threads));
    await start('haproxy', ['-f', cfg, '-db'], null);
  }
  const results = new Map<Target, { bulk: number; rate: number; p50: number; p99: number }>();
  for (const target of Object.keys(TARGETS) as Target[]) {
    const port = TARGETS[target];
    const bulk = client('bulk', port);
    const rate = client('rate', port + 1);
    const lat = client('latency', port + 2);
    results.set(target, { bulk: bulk.bytesPerSecond!, rate: rate.perSecond!, p50: lat.p50us!, p99: lat.p99us! });
  }
  const d = results.get('direct')!;
  const h = results.get('haproxy (1 thread)')!;
  console.log(
    `userspace proxy benchmark: ${SECONDS} s per measurement, loopback in namespace ${NS}, ${spawnSync('nproc').stdout.toString().trim()} cores`,
  );
  console.log('target                      bulk MB/s   conn/s   rtt p50 us   rtt p99 us   bulk vs haproxy-1t   conn/s vs haproxy-1t');
  for (const [name, r] of results) {
    console.log(
      `${name.padEnd(26)} ${(r.bulk / 1e6).toFixed(0).padStart(9)} ${r.rate.toFixed(0).padStart(8)} ${r.p50.toFixed(0).padStart(12)} ${r.p99.toFixed(0).padStart(12)} ${(r.bulk / h.bulk).toFixed(2).padStart(20)} ${(r.rate / h.rate).toFixed(2).padStart(22)}`,
    );
  }
  const u = results.get('userspace')!;
  console.log(
    `userspace vs direct: bulk ${(u.bulk / d.bulk).toFixed(2)}x, conn/s ${(u.rate / d.rate).toFixed(2)}x, added p50 latency ${(u.p50 - d.p50).toFixed(0)} us`,
  );
  console.log(
    `goals: bulk >= 0.80 x haproxy: ${(u.bulk / h.bulk).toFixed(2)} ${u.bulk / h.bulk >= 0.8 ? 'met' : 'NOT met'}; conn/s >= 0.50 x haproxy: ${(u.rate / h.rate).toFixed(2)} ${u.rate / h.rate >= 0.5 ? 'met' : 'NOT met'}`,
  );
}

try {
  await main();
} finally {
  cleanup();
}
