import { describe, expect, it } from 'vitest';
import { dpkgSlimConfig } from './debian-rootfs.ts';
import { mountsUnder } from './podman.ts';

describe('podman storage of its own', () => {
  it('finds what podman left mounted under its folder, deepest first, and nothing beside it', () => {
    const mountinfo = [
      '22 1 0:20 / /sys rw - sysfs sysfs rw',
      '90 1 0:50 / /tmp/kpt-image-a/storage/overlay rw - ext4 /dev/vda rw',
      '91 90 0:51 / /tmp/kpt-image-a/storage/overlay/abc/merged rw - overlay overlay rw,lowerdir=x',
      '92 1 0:52 / /tmp/kpt-image-ab/storage rw - ext4 /dev/vda rw',
    ].join('\n');
    expect(mountsUnder(mountinfo, '/tmp/kpt-image-a')).toEqual(['/tmp/kpt-image-a/storage/overlay/abc/merged', '/tmp/kpt-image-a/storage/overlay']);
  });
});

describe('the slim stand-in', () => {
  it('keeps docs, man pages and translations out of later installs, copyright files excepted (debuerreotype slimify)', () => {
    const lines = dpkgSlimConfig().split('\n');
    for (const dir of ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/share/info']) expect(lines).toContain(`path-exclude ${dir}/*`);
    expect(lines).toContain('path-include /usr/share/doc/*/copyright');
    expect(lines.indexOf('path-include /usr/share/doc/*/copyright')).toBeGreaterThan(lines.indexOf('path-exclude /usr/share/doc/*'));
  });
});
