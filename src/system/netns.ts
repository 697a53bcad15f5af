/**
 * Network-namespace plumbing over a CommandRunner: namespaces, veth pairs,
 * bridges, addresses, routes, sysctls. Every operation targets a named
 * namespace (`ip -n NS ...`, `ip netns exec NS ...`) and never the caller's
 * own namespace, is idempotent (safe to repeat), and is bounded by a timeout.
 *
 * Used by the end-to-end harness (test/netns/) and the demo; kube-proxy-ts
 * itself never creates namespaces.
 */
import { describeFailure, type RunResult } from '../../proxier/exec.ts';
import type { ExecaRunner } from './exec.ts';

export interface NetnsOpsOptions {
  readonly runner: ExecaRunner;
  /** Upper bound for each command (default 15 s). */
  readonly timeoutMs?: number;
  /** Signals a process left inside a namespace being deleted (default process.kill). */
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
}

export interface LinkEnd {
  readonly ns: string;
  readonly name: string;
}

export interface NetnsOps {
  listNamespaces(): Promise<string[]>;
  /** Creates the namespace (no-op when it exists) and brings its loopback up. */
  addNamespace(name: string): Promise<void>;
  /** Kills the processes still inside, then deletes the namespace (no-op when absent). */
  deleteNamespace(name: string): Promise<void>;
  /** Deletes every namespace whose name starts with `${prefix}-`; returns their names. */
  sweepNamespaces(prefix: string): Promise<string[]>;
  /** A veth pair with one end in each namespace (created in place, never in the caller's namespace). */
  addVeth(a: LinkEnd, b: LinkEnd): Promise<void>;
  addBridge(ns: string, name: string): Promise<void>;
  /** Runs `ip` commands (argv arrays, no whitespace inside words) in one process inside ns; stops at the first error. */
  ipBatch(ns: string, commands: readonly (readonly string[])[]): Promise<void>;
  setMaster(ns: string, link: string, bridge: string): Promise<void>;
  /** `ip addr replace`; IPv6 addresses skip duplicate address detection. */
  addAddress(ns: string, dev: string, cidr: string): Promise<void>;
  /** `ip route replace DST [via GW] [dev DEV]` (DST may be "default"). */
  addRoute(ns: string, dst: string, opts: { via?: string; dev?: string; family?: 4 | 6 }): Promise<void>;
  linkUp(ns: string, ...links: string[]): Promise<void>;
  /** Writes sysctls by dotted name ("net.ipv4.ip_forward") inside ns. */
  setSysctls(ns: string, values: Readonly<Record<string, string | number>>): Promise<void>;
  getSysctl(ns: string, key: string): Promise<string>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const SYSCTL = /^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;

function checkName(what: string, name: string, re: RegExp): void {
  if (!re.test(name)) throw new Error(`invalid ${what} ${JSON.stringify(name)}: must match ${re.source}`);
}

export function createNetnsOps(options: NetnsOpsOptions): NetnsOps {
  const { runner } = options;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const kill = options.kill ?? ((pid: number, signal: NodeJS.Signals) => process.kill(pid, signal));

  async function run(cmd: string, args: readonly string[], extra: { input?: string; netns?: string } = {}): Promise<RunResult> {
    return runner.run(cmd, args, { timeoutMs, ...extra });
  }
  async function must(cmd: string, args: readonly string[], extra: { input?: string; netns?: string } = {}): Promise<RunResult> {
    const r = await run(cmd, args, extra);
    if (r.code !== 0) throw new Error(describeFailure(cmd, args, r, extra.netns));
    return r;
  }
  /** Runs ip; "File exists" counts as success (the object is already there). */
  async function ipCreate(args: readonly string[]): Promise<void> {
    const r = await run('ip', args);
    if (r.code !== 0 && !/File exists/.test(r.stderr)) throw new Error(describeFailure('ip', args, r));
  }

  const ops: NetnsOps = {
    async listNamespaces() {
      const r = await must('ip', ['netns', 'list']);
      return r.stdout
        .split('\n')
        .map((l) => l.split(' ')[0] ?? '')
        .filter((n) => n !== '');
    },
    async addNamespace(name) {
      checkName('namespace name', name, NAME);
      await ipCreate(['netns', 'add', name]);
      await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    },
    async deleteNamespace(name) {
      checkName('namespace name', name, NAME);
      if (!(await ops.listNamespaces()).includes(name)) return;
      const pids = await run('ip', ['netns', 'pids', name]);
      for (const pid of pids.stdout.split('\n').filter((p) => /^\d+$/.test(p))) {
        try {
          kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      const r = await run('ip', ['netns', 'del', name]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(describeFailure('ip', ['netns', 'del', name], r));
    },
    async sweepNamespaces(prefix) {
      checkName('namespace prefix', prefix, NAME);
      const stale = (await ops.listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
      for (const name of stale) await ops.deleteNamespace(name);
      return stale;
    },
    async addVeth(a, b) {
      for (const end of [a, b]) {
        checkName('namespace name', end.ns, NAME);
        checkName('link name', end.name, LINK_NAME);
      }
      await ipCreate(['-n', a.ns, 'link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
    },
    async addBridge(ns, name) {
      checkName('link name', name, LINK_NAME);
      await ipCreate(['-n', ns, 'link', 'add', name, 'type', 'bridge']);
    },
    async ipBatch(ns, commands) {
      if (commands.length === 0) return;
      for (const c of commands) {
        if (c.some((w) => w === '' || /\s/.test(w))) throw new Error(`ip batch word must be non-empty without whitespace: ${JSON.stringify(c)}`);
      }
      await must('ip', ['-n', ns, '-batch', '-'], { input: commands.map((c) => c.join(' ')).join('\n') + '\n' });
    },
    async setMaster(ns, link, bridge) {
      await must('ip', ['-n', ns, 'link', 'set', link, 'master', bridge]);
    },
    async addAddress(ns, dev, cidr) {
      const v6 = cidr.includes(':');
      await must('ip', ['-n', ns, ...(v6 ? ['-6'] : []), 'addr', 'replace', cidr, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
    },
    async addRoute(ns, dst, opts) {
      const family = opts.family ?? (dst.includes(':') || (opts.via ?? '').includes(':') ? 6 : 4);
      const args = ['-n', ns, `-${family}`, 'route', 'replace', dst];
      if (opts.via !== undefined) args.push('via', opts.via);
      if (opts.dev !== undefined) args.push('dev', opts.dev);
      await must('ip', args);
    },
    async linkUp(ns, ...links) {
      await ops.ipBatch(
        ns,
        links.map((l) => ['link', 'set', l, 'up']),
      );
    },
    async setSysctls(ns, values) {
      // One `tee` per distinct value writes all of its /proc/sys files (coreutils only, no procps).
      const byValue = new Map<string, string[]>();
      for (const [key, value] of Object.entries(values)) {
        checkName('sysctl', key, SYSCTL);
        const files = byValue.get(String(value)) ?? [];
        files.push(`/proc/sys/${key.replaceAll('.', '/')}`);
        byValue.set(String(value), files);
      }
      for (const [value, files] of byValue) {
        await must('tee', files, { netns: ns, input: `${value}\n` });
      }
    },
    async getSysctl(ns, key) {
      checkName('sysctl', key, SYSCTL);
      const r = await must('cat', [`/proc/sys/${key.replaceAll('.', '/')}`], { netns: ns });
      return r.stdout.trim();
    },
  };
  return ops;
}
