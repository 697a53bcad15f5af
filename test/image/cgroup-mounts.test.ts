import { describe, expect, it } from 'vitest';
import { cgroupMounts, remountCgroupsScript } from './cgroup-mounts.ts';

// The test machine's hybrid layout (cgroup v1 controllers, a unified v2 tree), with unrelated mounts around it.
const HYBRID = `22 1 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 22 0:38 / /sys/fs/cgroupx rw,relatime - tmpfs tmpfs rw
`;
// A systemd host on cgroup v2 only.
const UNIFIED = '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';

describe('remounting the cgroup hierarchies inside ip netns exec', () => {
  it('reads the mounts at and under /sys/fs/cgroup, parents first, options merged', () => {
    expect(cgroupMounts(HYBRID)).toEqual([
      { mountPoint: '/sys/fs/cgroup', fsType: 'tmpfs', source: 'tmpfs', options: 'rw,relatime,mode=755' },
      { mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', source: 'cgroup', options: 'rw,relatime,cpu' },
      { mountPoint: '/sys/fs/cgroup/systemd', fsType: 'cgroup', source: 'cgroup', options: 'rw,relatime,name=systemd' },
      { mountPoint: '/sys/fs/cgroup/unified', fsType: 'cgroup2', source: 'cgroup2', options: 'rw,relatime' },
    ]);
  });

  it('mounts each hierarchy again and recreates the symlinks between them', () => {
    expect(remountCgroupsScript(HYBRID, [{ name: 'cpuacct', target: 'cpu' }]).split('\n')).toEqual([
      'set -e',
      'mkdir -p /sys/fs/cgroup',
      'mount -t tmpfs -o rw,relatime,mode=755 tmpfs /sys/fs/cgroup',
      'mkdir -p /sys/fs/cgroup/cpu',
      'mount -t cgroup -o rw,relatime,cpu cgroup /sys/fs/cgroup/cpu',
      'mkdir -p /sys/fs/cgroup/systemd',
      'mount -t cgroup -o rw,relatime,name=systemd cgroup /sys/fs/cgroup/systemd',
      'mkdir -p /sys/fs/cgroup/unified',
      'mount -t cgroup2 -o rw,relatime cgroup2 /sys/fs/cgroup/unified',
      'ln -sfn cpu /sys/fs/cgroup/cpuacct',
    ]);
  });

  it('handles a cgroup v2 only host, and a host with no cgroup mount at all', () => {
    expect(remountCgroupsScript(UNIFIED)).toContain(
      'mount -t cgroup2 -o rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup',
    );
    expect(remountCgroupsScript('22 1 0:20 / /sys rw - sysfs sysfs rw\n')).toBe('');
  });

  it('refuses a word that would need shell quoting', () => {
    expect(() => remountCgroupsScript('30 22 0:27 / /sys/fs/cgroup rw - tmpfs a$b rw\n')).toThrow(/unexpected character.*a\$b/);
  });
});
