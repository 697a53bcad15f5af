/**
 * The README's first command, `npm start` (examples/sandbox.ts), run as a
 * newcomer runs it: the whole story in each mode (exit 0, every step
 * printed, pods on both nodes answering, the change followed), then an
 * interrupt in the middle, which must leave no namespace, agent or
 * temporary directory behind. Each run uses its own namespace prefix.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';

const SANDBOX = new URL('../examples/sandbox.ts', import.meta.url).pathname;
const net = createNetnsOps({ runner: createExecaRunner() });

interface Run {
  readonly code: Promise<number | null>;
  output(): string;
  kill(signal: NodeJS.Signals): void;
}

function start(args: readonly string[]): Run {
  const child = spawn(process.execPath, [SANDBOX, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = new Promise<number | null>((resolve) => child.once('close', (c, sig) => resolve(c ?? (sig ? -1 : null))));
  return { code, output: () => output, kill: (s) => child.kill(s) };
}

async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Prefix-scoped leftovers: namespaces, processes whose command line names the prefix, temporary directories. */
async function leftovers(prefix: string): Promise<string[]> {
  const left = (await net.listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(`${prefix}-`)) left.push(`process ${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  left.push(
    ...readdirSync(tmpdir())
      .filter((d) => d.startsWith(`${prefix}-`))
      .map((d) => `directory ${d}`),
  );
  return left;
}

const prefix = (tag: string): string => `kps${process.pid % 100_000}${tag}`;

describe('npm start: the sandbox demo', () => {
  for (const mode of ['iptables', 'nftables', 'userspace'] as const) {
    it(`tells the whole story in ${mode} mode and removes everything`, async () => {
      const p = prefix(mode[0]!);
      const run = start(['--mode', mode, '--prefix', p]);
      const code = await within(90_000, run.code, `sandbox --mode ${mode}`);
      const out = run.output();
      expect(code, out).toBe(0);
      for (const step of [
        '1/8  Building the sandbox',
        `2/8  Starting kube-proxy-ts on node-1 and node-2 in ${mode} mode`,
        '3/8  The services',
        '4/8  ',
        '5/8  Real requests',
        '6/8  What operators see',
        '7/8  A change',
        '8/8  Cleaning up',
      ]) {
        expect(out).toContain(`[${mode}] ${step}`);
      }
      expect(out).toMatch(
        {
          iptables: /-j DNAT --to-destination 10\.244\.2\.2:8080 +# pod-c \(node-2\)/,
          nftables:
            /chain endpoint-\w+-default\/web\/tcp\/http__10\.244\.2\.2\/8080: meta l4proto tcp dnat to 10\.244\.2\.2:8080 +# pod-c \(node-2\)/,
          userspace: /-A KUBE-PORTALS-CONTAINER -d 172\.30\.0\.10\/32 .*REDIRECT --to-ports \d+/,
        }[mode],
      );
      if (mode === 'iptables') expect(out).toContain('converged: the kernel holds exactly the desired rules');
      else if (mode === 'nftables') {
        expect(out).toMatch(/map service-ips: 172\.30\.0\.10 \. tcp \. 80 : goto service-\w+-default\/web\/tcp\/http/);
        // Generation B (upstream v1.36+): the endpoint chains are --traffic-counters'; without, web's chain DNATs through a map.
        expect(out).toMatch(
          /web's service chain DNATs itself, `meta l4proto tcp dnat ip addr \. port to numgen random mod 3 map \{ 0 : 10\.244\.\d\.\d \. 8080 , 1 : [\d.]+ \. 8080 , 2 : [\d.]+ \. 8080 \}`/,
        );
        expect(out).not.toMatch(/chain \S+: .*mark set/);
        expect(out).toContain('IPv4: converged: table ip kube-proxy holds exactly the desired chains, rules, sets, elements and counters');
      } else expect(out).toMatch(/udp +0\.0\.0\.0:\d+ +proxy for 172\.30\.0\.53:53\/udp/);
      // Step 5: pods on both nodes answered, from a pod, from outside via node-2's node port, and over UDP.
      const requests = out.slice(out.indexOf('5/8'), out.indexOf('6/8'));
      expect(requests).toMatch(/pod-[ab] +node-1 +[1-9]/);
      expect(requests).toMatch(/pod-c +node-2 +[1-9]/);
      expect(requests).toMatch(/pod-d +node-2 +[1-9]/);
      expect(requests).toContain('every request answered by an endpoint of its service, pods on node-1 and node-2 alike');
      // Step 6: top's last screen shows web's endpoints with their traffic; /debug/services lists web.
      const observe = out.slice(out.indexOf('6/8'), out.indexOf('7/8'));
      if (mode !== 'userspace') {
        expect(observe).toMatch(/default\/web:http +[1-9][\d.]* /);
        expect(observe).toMatch(/kubeproxy_ts_endpoint_packets_total\{service="default\/web:http",endpoint="10\.244\.1\.2:8080"\} [1-9]/);
      }
      if (mode === 'iptables') {
        expect(observe).toMatch(/10\.244\.1\.2:8080 +ready +node-1 \(local\) +KUBE-SEP-\S+ +[1-9]\d* pkts/);
      } else if (mode === 'nftables') {
        expect(observe).toContain('named counters count them');
        expect(observe).toMatch(
          / service-\w+-default\/web\/tcp\/http external-\w+-default\/web\/tcp\/http cluster-ips\[172\.30\.0\.10\] service-ips\[/,
        );
        expect(observe).toMatch(
          /10\.244\.1\.2:8080 +ready +node-1 \(local\) +endpoint-\w+-default\/web\/tcp\/http__10\.244\.1\.2\/8080 hairpin-\S*\.\.\. +[1-9]\d* pkts +[1-9]\d* bytes\n/,
        );
      } else expect(observe).toMatch(/listener 0\.0\.0\.0:\d+\/TCP/);
      // Step 7: the edit is followed on both nodes; pod-a gets nothing afterwards.
      const change = out.slice(out.indexOf('7/8'), out.indexOf('8/8'));
      expect(change).toMatch(/node-1 followed the change \d/);
      expect(change).toMatch(/node-2 followed the change \d/);
      expect(change.match(/pod-a +node-1 +0\n/g)).toHaveLength(2);
      expect(change).toContain('pod-a gets no more requests, pod-d gets its share');
      expect(out).toContain('every check held');
      expect(await leftovers(p)).toEqual([]);
    });
  }

  it('removes everything when interrupted in the middle (SIGINT)', async () => {
    const p = prefix('s');
    const run = start(['--mode', 'iptables', '--prefix', p]);
    const t0 = Date.now();
    while (!run.output().includes('2/8  Starting kube-proxy-ts')) {
      if (Date.now() - t0 > 60_000) throw new Error(`step 2 never started:\n${run.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Let the agents start (and the sandbox be complete), then interrupt.
    await new Promise((r) => setTimeout(r, 300));
    expect((await net.listNamespaces()).filter((n) => n.startsWith(`${p}-`)).length).toBeGreaterThan(0);
    const sent = Date.now();
    run.kill('SIGINT');
    const code = await within(15_000, run.code, 'sandbox after SIGINT');
    expect(code, run.output()).toBe(130);
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(run.output()).toContain('interrupted (SIGINT): removing the sandbox');
    expect(run.output()).toContain(`removed: no ${p}-* namespace or agent left`);
    expect(await leftovers(p)).toEqual([]);
  });

  it('refuses an unknown mode with usage (exit 2)', async () => {
    const run = start(['--mode', 'ipvs']);
    expect(await within(15_000, run.code, 'sandbox --mode ipvs')).toBe(2);
    expect(run.output()).toContain('--mode must be iptables, nftables, userspace or all');
  });
});
