/**
 * Helper of cli-render.ts: runs a command (argv after this script's name)
 * with its stdout drained, and prints as JSON how long it took to write its
 * first byte, wall and CPU (user + system of the process, from /proc, polled
 * every 2 ms). Before its first byte a command's CPU cannot overlap the work
 * of a reader on the other end of the pipe: that is what bounds
 * `render | iptables-restore` against the restore alone.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) throw new Error('usage: first-byte.ts COMMAND [ARGS...]');
const ticksMs = 10; // USER_HZ is 100 on Linux
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * ticksMs; // utime, stime
  } catch {
    return NaN;
  }
}

const t0 = performance.now();
const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
let first: { wallMs: number; cpuMs: number } | null = null;
child.stdout.once('data', () => (first = { wallMs: performance.now() - t0, cpuMs: cpuMs(child.pid!) }));
child.stdout.resume();
child.on('close', (code) => {
  if (code !== 0 || first === null) {
    process.stderr.write(`${cmd}: exit ${code}${first ? '' : ', nothing written'}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(first) + '\n');
});
