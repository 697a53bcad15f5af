/**
 * The sandbox demo (`npm start`): builds a two-node cluster out of network
 * namespaces on this machine, runs kube-proxy-ts on both nodes from the
 * objects in examples/sandbox-cluster.yaml, sends real traffic through it,
 * changes an endpoint and watches the traffic follow, then removes
 * everything; in iptables mode, then nftables mode, then userspace mode. Needs
 * root; installs iproute2, iptables, nftables and conntrack with apt-get when
 * they are missing.
 * Nothing outside the namespaces it creates is touched, and they are removed
 * also on Ctrl-C (SIGINT) or SIGTERM.
 *
 *   node examples/sandbox.ts [--mode iptables|nftables|userspace|all] [--prefix kpdemo]
 *
 * Exit 0 when every check held, 1 when one failed (or the machine cannot
 * run it), 2 on bad usage, 130/143/129 on SIGINT/SIGTERM/SIGHUP, 141 when
 * stdout is closed (`npm start | head`): the sandbox is removed in every case.
 */
import { parseArgs } from 'node:util';
import type { Mode } from './sandbox/agents.ts';
import { tail } from './sandbox/agents.ts';
import { preflight } from './sandbox/preflight.ts';
import { namespacesUnder, newResources, sweep, teardown, type Resources } from './sandbox/resources.ts';
import { runMode, STEPS } from './sandbox/run-mode.ts';
import { createStory, seconds, wantColor } from './sandbox/story.ts';

const USAGE = `Usage: node examples/sandbox.ts [--mode iptables|nftables|userspace|all] [--prefix NAME]
  --mode    which proxy mode(s) to show (default all: iptables, then nftables, then userspace)
  --prefix  name prefix of the network namespaces it creates (default kpdemo; [a-z0-9]{2,12})
`;

function usage(message: string): never {
  process.stderr.write(`sandbox: ${message}\n${USAGE}`);
  process.exit(2);
}

function readArgs(): { modes: Mode[]; prefix: string } {
  const options = {
    mode: { type: 'string', default: 'all' },
    prefix: { type: 'string', default: 'kpdemo' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const { values } = (() => {
    try {
      return parseArgs({ options });
    } catch (err) {
      return usage(err instanceof Error ? err.message : String(err));
    }
  })();
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (!['iptables', 'nftables', 'userspace', 'all'].includes(values.mode))
    usage(`--mode must be iptables, nftables, userspace or all, not ${JSON.stringify(values.mode)}`);
  if (!/^[a-z0-9]{2,12}$/.test(values.prefix)) usage(`--prefix must be 2-12 of [a-z0-9], not ${JSON.stringify(values.prefix)}`);
  return { modes: values.mode === 'all' ? ['iptables', 'nftables', 'userspace'] : [values.mode as Mode], prefix: values.prefix };
}
const { modes, prefix } = readArgs();

// Once stdout is gone (`npm start | head`), stop writing and clean up as on Ctrl-C.
let muted = false;
const write = (text: string): void => {
  if (!muted) process.stdout.write(text);
};
const story = createStory(write, { color: wantColor(process.stdout), total: STEPS });
const exit = (code: number): void => (muted ? process.exit(code) : void process.stdout.write('', () => process.exit(code)));

const abort = new AbortController();
let current: Resources | null = null;
let interrupted: string | null = null;

async function runAll(): Promise<number> {
  story.plain('kube-proxy-ts sandbox: a small Kubernetes-shaped cluster made of network namespaces on this machine,');
  story.plain(`with kube-proxy-ts on both nodes and real traffic through it (${modes.join(' mode, then ')} mode).`);
  story.plain('Nothing outside those namespaces is touched; they are all removed at the end, also on Ctrl-C.');
  const problem = await preflight({ say: (t) => story.plain(t) });
  if (problem !== null) {
    process.stderr.write(`\nsandbox: ${problem}\n`);
    return 1;
  }
  const results: string[] = [];
  let failed = false;
  for (const mode of modes) {
    if (abort.signal.aborted) break;
    story.banner(`${mode} mode`);
    story.restart(mode);
    const res = newResources(prefix);
    current = res;
    const t0 = Date.now();
    try {
      const problems = await runMode(mode, res, { story, signal: abort.signal });
      failed ||= problems.length > 0;
      results.push(
        problems.length === 0 ? `ok  ${mode} mode: every check held (${seconds(Date.now() - t0)})` : `!!  ${mode} mode: ${problems.join('; ')}`,
      );
    } catch (err) {
      // On Ctrl-C the whole process group gets SIGINT: a pod server or agent may die before our handler runs.
      if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, 200));
      if (abort.signal.aborted) break;
      failed = true;
      story.warn(`${mode} mode stopped: ${err instanceof Error ? err.message : String(err)}`);
      for (const a of res.agents) if (a.output().trim() !== '') story.line(`kube-proxy-ts on ${a.node}, last lines:\n${tail(a.output(), 8)}`);
      results.push(`!!  ${mode} mode failed`);
      const report = await teardown(res);
      story.line(`removed the sandbox (${report.namespaces} namespaces)${report.left.length > 0 ? `; left: ${report.left.join(', ')}` : ''}`);
    } finally {
      await teardown(res);
    }
  }
  if (abort.signal.aborted) return 130;
  story.banner('Summary');
  for (const r of results) story.line(r);
  story.line('Next: README.md (running it on a real cluster), `kube-proxy-ts help`, `npm test`.');
  return failed ? 1 : 0;
}

const main = runAll().catch((err: unknown) => {
  if (abort.signal.aborted) return 130;
  process.stderr.write(`sandbox: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
});

/** Ctrl-C, SIGTERM, SIGHUP, a closed stdout or an unexpected error: stop the run, remove the sandbox, exit `code`. */
function shutDown(reason: string, code: number): void {
  if (interrupted !== null) {
    write(`(${reason} again: still removing the sandbox, a moment)\n`);
    return;
  }
  interrupted = reason;
  write(`\n\ninterrupted (${reason}): removing the sandbox ...\n`);
  abort.abort();
  void (async () => {
    if (current) await teardown(current, { fast: true }).catch(() => undefined);
    // The run stops at its next checkpoint; a namespace it was creating meanwhile is swept here.
    await Promise.race([main, new Promise((r) => setTimeout(r, 5000))]);
    await sweep(prefix).catch(() => 0);
    const left = await namespacesUnder(prefix).catch(() => [] as string[]);
    write(
      left.length === 0
        ? `removed: no ${prefix}-* namespace or agent left\n`
        : `could not remove ${left.join(', ')}: run \`ip netns del NAME\` for each\n`,
    );
    exit(code);
  })();
}
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const)
  process.on(sig, () => shutDown(sig, code));
process.stdout.on('error', () => {
  muted = true;
  shutDown('stdout closed', 141);
});
process.on('uncaughtException', (err) => {
  process.stderr.write(`sandbox: ${err.stack ?? err.message}\n`);
  shutDown('unexpected error', 1);
});

const code = await main;
if (interrupted === null) exit(code);
