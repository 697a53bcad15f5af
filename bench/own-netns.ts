/**
 * For a benchmark that programs the kernel: re-runs the script in a private
 * network namespace of its own (`unshare --net`, which is gone when the
 * script ends) and exits with its status; in that namespace, returns, after
 * refusing to go on if it still sees the namespace it was started in.
 * `what`: what the script would do there, for the refusal.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

export function inOwnNetworkNamespace(script: string, what: string): void {
  const host = process.argv.find((a) => a.startsWith('--outside='))?.slice(10);
  if (host === undefined) {
    const own = `--outside=${readlinkSync('/proc/self/ns/net')}`;
    const r = spawnSync('unshare', ['--net', process.execPath, ...process.execArgv, script, own], { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  if (readlinkSync('/proc/self/ns/net') === host) throw new Error(`refusing to ${what} in the network namespace the benchmark was started in`);
}
