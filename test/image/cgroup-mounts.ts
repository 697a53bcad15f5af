/**
 * `ip netns exec` gives its command a private mount namespace in which /sys
 * is a fresh sysfs of the target network namespace, without the cgroup
 * hierarchies mounted under /sys/fs/cgroup; runc cannot create a container
 * there ("no cgroup mount found in mountinfo"). remountCgroupsScript turns
 * the caller's own mount table into shell commands that mount the same
 * hierarchies again (same file system types, sources and options), to run
 * inside that private namespace before podman. Pure: the caller reads
 * /proc/self/mountinfo and lists the symlinks in /sys/fs/cgroup.
 */

export interface CgroupMount {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: string;
}

export interface CgroupSymlink {
  /** Name inside /sys/fs/cgroup, e.g. "cpu" (for cpu -> cpu,cpuacct). */
  readonly name: string;
  readonly target: string;
}

const ROOT = '/sys/fs/cgroup';
const SAFE = /^[\w@%+=:,./-]+$/;

/** The mounts at and under /sys/fs/cgroup, parents first (mountinfo's order), per-mount and super options merged. */
export function cgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right === undefined) continue;
    const f = left!.split(' ');
    const [fsType, source, superOptions] = right.split(' ');
    const mountPoint = f[4];
    if (mountPoint === undefined || fsType === undefined || source === undefined) continue;
    if (mountPoint !== ROOT && !mountPoint.startsWith(`${ROOT}/`)) continue;
    const options = [...new Set([...(f[5] ?? '').split(','), ...(superOptions ?? '').split(',')].filter(Boolean))];
    out.push({ mountPoint, fsType, source, options: options.join(',') });
  }
  return out;
}

function quote(word: string): string {
  if (!SAFE.test(word)) throw new Error(`unexpected character in cgroup mount word ${JSON.stringify(word)}`);
  return word;
}

/** `set -e` shell commands that recreate the cgroup mounts and symlinks; empty when nothing is mounted there. */
export function remountCgroupsScript(mountinfo: string, symlinks: readonly CgroupSymlink[] = []): string {
  const mounts = cgroupMounts(mountinfo);
  if (mounts.length === 0) return '';
  const lines = ['set -e'];
  for (const m of mounts) {
    lines.push(`mkdir -p ${quote(m.mountPoint)}`, `mount -t ${quote(m.fsType)} -o ${quote(m.options)} ${quote(m.source)} ${quote(m.mountPoint)}`);
  }
  for (const s of symlinks) lines.push(`ln -sfn ${quote(s.target)} ${quote(`${ROOT}/${s.name}`)}`);
  return lines.join('\n');
}
