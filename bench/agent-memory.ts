/**
 * Resident memory of the agent as operators run it (`npm run bench:memory`,
 * as root): the real `kube-proxy-ts` process (src/main.ts with its shebang's
 * V8 flags) in a network namespace this script creates, talking over TLS to
 * the in-process fake API server (test/fake-apiserver.ts; a socat relay in
 * the namespace forwards :6443 to its unix socket), holding Services and
 * EndpointSlices shaped as an API server lists them (bench/cluster-objects.ts:
 * uid, managedFields, targetRefs, a Node with images and conditions).
 *
 * Per mode and size: the process's resident memory sampled every 20 ms from
 * /proc from start through the first full sync and endpoint changes
 * (BENCH_CHANGES, default 10, each waited for), peak (VmHWM) and settled (VmRSS 3 s after the last
 * change). "idle" is a handful of services (BENCH_IDLE_SERVICES, default 5). Then the steady state: the agent runs on
 * for BENCH_STEADY_S (default 65; 0 skips it), two periods of its periodic work at the default sync period of 30 s
 * (the iptables mode's check of the tables, the nftables mode's damage check), and the resident size at its end and the peak
 * within it are reported too: what an operator sees of an agent that has been running for a while.
 * Then the floor: resident memory after loading modules only (moduleFloor).
 *
 * Also the agent's CPU time (utime+stime from /proc/PID/stat, the process
 * alone) from start to the first full sync and through the changes, beside
 * the start-to-first-sync wall time: a memory gain bought with CPU shows. In
 * the steady window, also its children's (cutime+cstime: the iptables-restore,
 * iptables-save and nft processes it ran and waited for).
 *
 * The executable measured is the bundle the image runs (dist/kube-proxy-ts.mjs, built afresh at the start by
 * build/bundle.ts, so it is never stale); BENCH_AGENT_MAIN names another: src/entry.js (the sources, as
 * `node src/entry.js` runs them), another checkout's, or another bundle. Either way its compile cache is warmed first.
 *
 * Environment: BENCH_AGENT_MAIN (see above), BENCH_MODES (default iptables; the mode list of `--mode`),
 * BENCH_MEMORY_SIZES (default idle,10000), BENCH_REPS (default 5; a
 * 10,000-service run takes a minute or more). BENCH_NODE_FLAGS replaces the
 * shebang's node flags; BENCH_AGENT_NODE_FLAGS adds to them (e.g.
 * `--v8-pool-size=1`); BENCH_AGENT_ENV sets environment variables of the agent
 * process, space-separated NAME=value (glibc reads MALLOC_ARENA_MAX at process
 * start); default `MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072` as the image's ENV sets them, empty for
 * none. Both apply to the compile-cache warm-up and the module
 * floor too. BENCH_MODULE_FLOOR=0 skips the module floor. Prints a table, and
 * one JSON line per run when BENCH_JSON=1.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { FakeApiServer, kubeConfigFor } from '../test/fake-apiserver.ts';
import { startAgentProcess, type AgentProcess } from '../test/agent-runner.ts';
import { relayApiServer } from '../test/fake-apiserver-node.ts';
import { buildBundle, EXECUTABLE, warmBundleCache } from '../build/bundle.ts';
import { BENCH_NODE, benchNode, benchService, benchSlice, endpointIP } from './cluster-objects.ts';
import { fmt, summarize } from './stats.ts';

const modes = (process.env['BENCH_MODES'] ?? 'iptables').split(',').filter(Boolean);
const sizes = (process.env['BENCH_MEMORY_SIZES'] ?? 'idle,10000').split(',').filter(Boolean);
const IDLE = Number(process.env['BENCH_IDLE_SERVICES'] ?? 5);
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
const CHANGES = Number(process.env['BENCH_CHANGES'] ?? 10);
const STEADY_S = Number(process.env['BENCH_STEADY_S'] ?? 65);
const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = `kptbench-mem-${process.pid}`;
const MiB = 1024 * 1024;
/** The executable: the bundle the image runs, built now; BENCH_AGENT_MAIN names another (src/entry.js, another checkout's). */
const MAIN = process.env['BENCH_AGENT_MAIN'] ?? (await buildBundle()).executable;
/** A bundle (build/bundle.ts's output) or sources (src/entry.js or src/main.ts, type-stripped modules). */
const IS_BUNDLE = MAIN.endsWith(`/${EXECUTABLE}`);
/** The V8 flags of its shebang (the image's ENTRYPOINT repeats them), or BENCH_NODE_FLAGS to try others; plus BENCH_AGENT_NODE_FLAGS. */
const NODE_FLAGS = [
  ...(process.env['BENCH_NODE_FLAGS'] ?? /^#!.*\bnode\b(.*)$/m.exec(readFileSync(MAIN, 'utf8'))?.[1] ?? '').trim().split(/\s+/),
  ...(process.env['BENCH_AGENT_NODE_FLAGS'] ?? '').trim().split(/\s+/),
].filter(Boolean);
/** BENCH_AGENT_ENV: NAME=value pairs, space-separated, set in the agent's environment from its start; by default the Dockerfile's. */
const AGENT_ENV: Record<string, string> = Object.fromEntries(
  (process.env['BENCH_AGENT_ENV'] ?? 'MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(kv);
      if (!m) throw new Error(`BENCH_AGENT_ENV: ${JSON.stringify(kv)} is not NAME=value`);
      return [m[1]!, m[2]!];
    }),
);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** The fields of /proc/PID/stat after the command name (in parentheses, which may hold spaces): [0] is field 3, state. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds the process itself has used (utime + stime: fields 14 and 15). */
function cpuOf(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** CPU seconds of the children it has waited for (cutime + cstime: fields 16 and 17): iptables-restore, -save, nft -f. */
function childCpuOf(pid: number): number {
  const f = statFields(pid);
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** VmRSS and VmHWM of a process, in bytes; null once it is gone. */
function memoryOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** The node process: `ip netns exec`, unshare and sh all exec in place, so it is the spawned pid; checked. */
async function nodePid(agent: AgentProcess): Promise<number> {
  const pid = agent.child.pid!;
  let cmd = '';
  for (let i = 0; i < 100 && !cmd.includes(MAIN); i++) {
    await new Promise((r) => setTimeout(r, 20));
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  }
  if (!cmd.includes(MAIN)) throw new Error(`pid ${pid} is not the agent: ${cmd.replace(/\0/g, ' ')}`);
  return pid;
}

const syncs = (ns: string): number => {
  try {
    const text = execFileSync('ip', ['netns', 'exec', ns, 'curl', '-s', 'http://127.0.0.1:10249/metrics'], { encoding: 'utf8' });
    // Summed over label sets (one per family where the series has one).
    return [...text.matchAll(/^kubeproxy_sync_proxy_rules_duration_seconds_count(?:\{[^}]*\})? (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  } catch {
    return 0;
  }
};

async function until(what: string, check: () => boolean, timeoutMs: number, agent: AgentProcess): Promise<void> {
  const t0 = performance.now();
  while (!check()) {
    if (agent.child.exitCode !== null)
      throw new Error(`agent exited (${agent.child.exitCode}) while waiting for ${what}:\n${agent.output().slice(-2000)}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}:\n${agent.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Run {
  readonly peakMiB: number;
  readonly settledMiB: number;
  readonly firstSyncS: number;
  /** Agent CPU seconds (utime+stime) from start to the first full sync, and to the settled sample. */
  readonly cpuFirstSyncS: number;
  readonly cpuTotalS: number;
  /** After BENCH_STEADY_S more seconds (null when 0): VmRSS at its end, the peak within it, agent CPU in it. */
  readonly steadyMiB: number | null;
  readonly steadyPeakMiB: number | null;
  readonly cpuSteadyS: number | null;
  /** The CPU its children (iptables-restore, iptables-save, nft) used in those seconds; null when STEADY_S is 0. */
  readonly childCpuSteadyS: number | null;
  readonly load1: number;
}

async function measure(mode: string, n: number, dir: string): Promise<Run> {
  const api = await FakeApiServer.start();
  const sock = join(dir, `api-${process.hrtime.bigint()}.sock`);
  await api.listenUnix(sock);
  await net.deleteNamespace(NS).catch(() => undefined);
  await net.addNamespace(NS);
  const exec = async (ns: string, cmd: string, args: string[]) => ({
    stdout: execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' }),
  });
  execFileSync('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
  const relay = await relayApiServer(exec, NS, 6443, sock);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeConfigFor({ url: 'https://127.0.0.1:6443', pki: api.pki }).exportConfig());
  api.create('nodes', benchNode() as never);
  for (let i = 0; i < n; i++) {
    api.create('services', benchService(i) as never);
    api.create('endpointslices', benchSlice(i) as never);
  }
  let agent: AgentProcess | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    const load1 = loadavg()[0]!;
    const t0 = performance.now();
    agent = await startAgentProcess(
      NS,
      [
        ...['--kubeconfig', kubeconfig, '--hostname-override', BENCH_NODE, '--cluster-cidr', '10.0.0.0/8', '--mode', mode],
        ...['--iptables-min-sync-period', '0s', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249'],
      ],
      async () => true,
      20_000,
      { command: [process.execPath, ...NODE_FLAGS, MAIN], env: AGENT_ENV },
    );
    const pid = await nodePid(agent);
    let peak = 0;
    timer = setInterval(() => (peak = Math.max(peak, memoryOf(pid)?.rss ?? 0)), 20);
    const a = agent;
    await until('the first sync', () => syncs(NS) > 0, Number(process.env['BENCH_SYNC_TIMEOUT_MS'] ?? 600_000), a);
    const firstSyncS = (performance.now() - t0) / 1000;
    const cpuFirstSyncS = cpuOf(pid);
    for (let e = 0; e < (n > IDLE ? CHANGES : 0); e++) {
      const i = (e * 7919) % n;
      const before = syncs(NS);
      const slice = api.get('endpointslices', `bench/svc-${i}-slice`) as unknown as { endpoints: { addresses: string[] }[] };
      api.update('endpointslices', {
        ...slice,
        endpoints: slice.endpoints.map((ep, j) => (j === 1 ? { ...ep, addresses: [endpointIP(n + e, 1)] } : ep)),
      } as never);
      await until(`endpoint change ${e}`, () => syncs(NS) > before, 600_000, a);
    }
    await new Promise((r) => setTimeout(r, 3000));
    const m = memoryOf(pid)!;
    const cpuTotalS = cpuOf(pid);
    const childCpuS = childCpuOf(pid);
    const settledPeak = Math.max(peak, m.hwm);
    let steady: { rss: number; peak: number; cpu: number; children: number } | null = null;
    if (STEADY_S > 0) {
      peak = 0;
      await new Promise((r) => setTimeout(r, STEADY_S * 1000));
      const s = memoryOf(pid)!;
      steady = { rss: s.rss, peak: Math.max(peak, s.rss), cpu: cpuOf(pid) - cpuTotalS, children: childCpuOf(pid) - childCpuS };
    }
    return {
      peakMiB: settledPeak / MiB,
      settledMiB: m.rss / MiB,
      firstSyncS,
      cpuFirstSyncS,
      cpuTotalS,
      steadyMiB: steady && steady.rss / MiB,
      steadyPeakMiB: steady && steady.peak / MiB,
      cpuSteadyS: steady && steady.cpu,
      childCpuSteadyS: steady && steady.children,
      load1,
    };
  } finally {
    if (timer) clearInterval(timer);
    await agent?.stop();
    await relay.stop();
    await api.close();
    await net.deleteNamespace(NS).catch(() => undefined);
  }
}

/**
 * What the process holds before it does anything, resident MiB after loading, in fresh processes with the agent's V8
 * flags: Node alone; Node after loading one .ts file (the type stripper); client-node alone; the runtime dependencies
 * the project prescribes (client-node, execa, pino, prom-client, js-yaml) and nothing else; every module the agent
 * loads (src/agent.ts and src/cmd/run.ts) without the compile cache, and from a warm one as src/entry.js runs them;
 * the same code as the bundle's chunks the agent loads (all but main.mjs, 2 kB, which would run the CLI), without and
 * with a warm compile cache.
 */
async function moduleFloor(): Promise<Record<string, number[]>> {
  const root = new URL('..', import.meta.url).pathname;
  const cache = join(dir, 'compile-cache');
  const agent = `await import('${root}src/agent.ts'); await import('${root}src/cmd/run.ts');`;
  const bundle = await buildBundle({ outDir: join(dir, 'floor-bundle') });
  const bundleCache = join(dir, 'bundle-compile-cache');
  const bundled = bundle.agentChunks
    .filter((f) => !f.endsWith('/main.mjs'))
    .map((f) => `await import('${f}');`)
    .join(' ');
  const probes: Record<string, { code: string; env?: Record<string, string> }> = {
    'node alone': { code: '' },
    'node + type stripping (one .ts module)': { code: `await import('${root}proxier/clock.ts');` },
    'node + @kubernetes/client-node': { code: `await import('@kubernetes/client-node');` },
    'node + the prescribed runtime dependencies': {
      code: ['@kubernetes/client-node', 'execa', 'pino', 'prom-client', 'js-yaml'].map((m) => `await import('${m}');`).join(' '),
    },
    'every module the agent loads, no compile cache': { code: agent, env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
    'every module the agent loads, warm compile cache (no type stripper)': { code: agent, env: { NODE_COMPILE_CACHE: cache } },
    'the same bundled (the chunks the agent loads), no compile cache': { code: bundled, env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
    'the same bundled, warm compile cache': { code: bundled, env: { NODE_COMPILE_CACHE: bundleCache } },
  };
  execFileSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', bundled], { env: { ...process.env, NODE_COMPILE_CACHE: bundleCache } });
  // Warms the cache the last probe reads.
  execFileSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', agent], {
    cwd: root,
    env: { ...process.env, NODE_COMPILE_CACHE: cache },
  });
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(probes).map((k) => [k, []]));
  for (let rep = 0; rep < REPS; rep++)
    for (const [name, { code, env }] of Object.entries(probes)) {
      const text = execFileSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', `${code} console.log(process.memoryUsage().rss)`], {
        encoding: 'utf8',
        cwd: root,
        env: { ...process.env, ...AGENT_ENV, ...env },
      });
      out[name]!.push(Number(text.trim()) / MiB);
    }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'kpt-mem-bench-'));
const rows: string[] = [];
try {
  // As the image does at build time: the compile cache the executable turns on holds every module the agent loads, so
  // no run pays for compiling them (nor, from sources, keeps the type stripper).
  if (IS_BUNDLE) warmBundleCache(MAIN, NODE_FLAGS, { ...process.env, ...AGENT_ENV });
  else {
    // src/entry.js's cache: its checkout's node_modules/.cache.
    const agentRoot = join(dirname(MAIN), '..');
    execFileSync(
      process.execPath,
      [...NODE_FLAGS, '--input-type=module', '-e', `await import('${agentRoot}/src/agent.ts'); await import('${agentRoot}/src/cmd/run.ts');`],
      {
        env: {
          ...process.env,
          ...AGENT_ENV,
          NODE_COMPILE_CACHE: AGENT_ENV['NODE_COMPILE_CACHE'] ?? join(agentRoot, 'node_modules/.cache/kube-proxy-ts-compile'),
        },
      },
    );
    execFileSync(process.execPath, [...NODE_FLAGS, MAIN, '--help'], { stdio: 'ignore', env: { ...process.env, ...AGENT_ENV } });
  }
  for (const mode of modes) {
    for (const size of sizes) {
      const n = size === 'idle' ? IDLE : Number(size);
      const runs: Run[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const r = await measure(mode, n, dir);
        runs.push(r);
        if (process.env['BENCH_JSON'] === '1') console.log(JSON.stringify({ mode, services: n, ...r }));
      }
      rows.push(
        `| ${mode} | ${size === 'idle' ? `idle (${n})` : n.toLocaleString('en-US')} | ${fmt(summarize(runs.map((r) => r.settledMiB)))} | ${fmt(summarize(runs.map((r) => r.peakMiB)))} | ${fmt(summarize(runs.map((r) => r.firstSyncS)), 1)} | ${fmt(summarize(runs.map((r) => r.cpuFirstSyncS)), 1)} | ${fmt(summarize(runs.map((r) => r.cpuTotalS)), 1)} |${STEADY_S > 0 ? ` ${fmt(summarize(runs.map((r) => r.steadyMiB!)))} | ${fmt(summarize(runs.map((r) => r.steadyPeakMiB!)))} | ${fmt(summarize(runs.map((r) => r.cpuSteadyS!)), 1)} | ${fmt(summarize(runs.map((r) => r.childCpuSteadyS!)), 1)} |` : ''}`,
      );
    }
  }
  const envText = Object.entries(AGENT_ENV)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  console.log(
    `agent memory: real process (${envText}node ${NODE_FLAGS.join(' ')} ${relative(process.cwd(), MAIN) || MAIN}${IS_BUNDLE ? ', the bundle' : ''}), fake API server over TLS, ${REPS} runs each, MiB median (min-max)`,
  );
  console.log(
    '| mode | services | resident, settled | resident, peak | start to first sync, s | agent CPU to first sync, s | agent CPU through the changes, s |' +
      (STEADY_S > 0
        ? ` resident after ${STEADY_S} s more | peak in those ${STEADY_S} s | agent CPU in them, s | its children's CPU in them, s |`
        : '') +
      '\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |' +
      (STEADY_S > 0 ? ' ---: | ---: | ---: | ---: |' : ''),
  );
  for (const r of rows) console.log(r);
  if (process.env['BENCH_MODULE_FLOOR'] !== '0') {
    console.log('\nresident MiB after loading modules only, median (min-max)\n| | resident |\n| --- | ---: |');
    for (const [name, values] of Object.entries(await moduleFloor())) console.log(`| ${name} | ${fmt(summarize(values))} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
