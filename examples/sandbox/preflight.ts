/**
 * What the sandbox needs from the machine, checked (and on Debian/Ubuntu
 * installed) before anything is built: Linux, root (network namespaces),
 * iproute2 (ip, ss), iptables with a restore/save pair, conntrack, nft, and the
 * br_netfilter module (bridged pod traffic must pass through iptables).
 * The same package list and approach as .ci/run.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';

/** A command the sandbox runs, and the Debian package that has it. */
const TOOLS: readonly { readonly any: readonly string[]; readonly pkg: string }[] = [
  { any: ['ip'], pkg: 'iproute2' },
  { any: ['ss'], pkg: 'iproute2' },
  { any: ['iptables-nft-restore', 'iptables-legacy-restore'], pkg: 'iptables' },
  { any: ['iptables-nft-save', 'iptables-legacy-save'], pkg: 'iptables' },
  { any: ['conntrack'], pkg: 'conntrack' },
  { any: ['nft'], pkg: 'nftables' },
];
const INSTALL_TIMEOUT_MS = 10 * 60_000;

export interface PreflightIO {
  say(text: string): void;
}

/** iptables, ip and conntrack live in sbin, which a non-login PATH (sudo, npm) may lack. */
export function addSbinToPath(): void {
  const parts = (process.env['PATH'] ?? '').split(delimiter).filter((p) => p !== '');
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(dir)) parts.push(dir);
  process.env['PATH'] = parts.join(delimiter);
}

export function which(cmd: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return null;
}

export function missingPackages(): string[] {
  const pkgs = TOOLS.filter((t) => !t.any.some((c) => which(c) !== null)).map((t) => t.pkg);
  return [...new Set(pkgs)];
}

/** Resolves to null when the machine is ready, else to a message explaining what is wrong (exit 1). */
export async function preflight(io: PreflightIO): Promise<string | null> {
  if (process.platform !== 'linux') return `the sandbox needs Linux network namespaces; this is ${process.platform}.`;
  addSbinToPath();
  if (process.getuid?.() !== 0) {
    return [
      'the sandbox needs root: it creates network namespaces and writes iptables rules inside them',
      "(never in this machine's own network namespace). Run it as root, e.g.:  sudo npm start",
    ].join('\n');
  }

  const missing = missingPackages();
  if (missing.length > 0) {
    if (which('apt-get') === null)
      return `missing ${missing.join(', ')} (commands: ip, ss, iptables-*-restore, conntrack, nft) and no apt-get to install them: install them and re-run.`;
    io.say(`installing ${missing.join(', ')} with apt-get (missing on this machine) ...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [
      ['update', '-q'],
      ['install', '-y', '-q', '--no-install-recommends', ...missing],
    ]) {
      const r = await execa('apt-get', args, { env, reject: false, stdin: 'ignore', all: true, timeout: INSTALL_TIMEOUT_MS });
      if (r.exitCode !== 0)
        return `apt-get ${args.join(' ')} failed (exit ${r.exitCode ?? r.signal}):\n${String(r.all ?? '')
          .trim()
          .split('\n')
          .slice(-15)
          .join('\n')}`;
    }
    const still = missingPackages();
    if (still.length > 0) return `still missing after apt-get install: ${still.join(', ')}`;
    io.say(`installed ${missing.join(', ')}`);
  }

  if (!existsSync('/proc/sys/net/bridge')) {
    io.say('loading the br_netfilter kernel module (bridged pod traffic must pass through iptables) ...');
    const r =
      which('modprobe') === null ? null : await execa('modprobe', ['br_netfilter'], { reject: false, stdin: 'ignore', all: true, timeout: 30_000 });
    if (!existsSync('/proc/sys/net/bridge')) {
      return `the br_netfilter kernel module is not loaded and cannot be loaded${r ? `: ${String(r.all ?? '').trim()}` : ' (no modprobe)'}.\nLoad it on the host (modprobe br_netfilter) and re-run.`;
    }
  }
  return null;
}
