import { describe, expect, it } from 'vitest';
import { checkKernelVersion, checkNftVersion, SKIP_KERNEL_CHECK_ENV } from './version.ts';

describe('nft version floor (knftables New: nft >= 1.0.1)', () => {
  it.each([
    'nftables v1.0.1 (Fearless Fosdick #3)',
    'nftables v1.0.6 (Lester Gooch #5)',
    'nftables v1.1.3 (Commodore Bullmoose #4)',
    'nftables v2.0.0',
  ])('accepts %s', (v) => expect(checkNftVersion(v)).toBeNull());

  it.each(['nftables v1.0.0 (Fearless Fosdick #2)', 'nftables v0.9.8 (E.D.S.)'])('refuses %s, naming the floor and what it found', (v) => {
    expect(checkNftVersion(v)).toMatch(/requires nft 1\.0\.1 or later \(found (1\.0\.0|0\.9\.8)\)/);
  });

  it('says when the output is not a version', () => expect(checkNftVersion('nft: command not found')).toMatch(/cannot read the nft version/));
});

describe('kernel floor (upstream platformCheckSupported: 5.13)', () => {
  it.each(['5.13.0', '6.1.0-18-amd64', '6.18.44-fc-v1147', '5.15'])('accepts %s', (r) => expect(checkKernelVersion(r, {})).toBeNull());

  it("refuses 5.10 with upstream's message and the way out", () => {
    const why = checkKernelVersion('5.10.0-28-amd64', {});
    expect(why).toMatch(/kube-proxy in nftables mode requires kernel 5\.13 or later/);
    expect(why).toContain(SKIP_KERNEL_CHECK_ENV);
  });

  it('is skipped when the environment variable is non-empty, not when it is empty', () => {
    expect(checkKernelVersion('4.19.0', { [SKIP_KERNEL_CHECK_ENV]: '1' })).toBeNull();
    expect(checkKernelVersion('4.19.0', { [SKIP_KERNEL_CHECK_ENV]: '' })).not.toBeNull();
  });
});
