import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressInterval, formatInterval, intervalContains, mergeIntervals, cidrContainsText, parseCIDR, parseIP, parseIPText } from './ip.ts';

describe('parseIP', () => {
  it('reads legacy leading-zero IPv4 as decimal', () => {
    expect(parseIP('010.000.001.020')?.text).toBe('10.0.1.20');
  });
  it('canonicalises IPv6 and maps v4-mapped to IPv4', () => {
    expect(parseIP('2001:DB8:0:0:0:0:0:1')?.text).toBe('2001:db8::1');
    expect(parseIP('::ffff:1.2.3.4')).toMatchObject({ family: 'IPv4', text: '1.2.3.4' });
  });
  it('rejects garbage', () => {
    for (const bad of ['', '1.2.3', '1.2.3.256', 'abc', '1.2.3.4/32', 'fe80::1%eth0']) expect(parseIP(bad)).toBeNull();
  });
});

describe('parseIPText', () => {
  it("gives parseIP's family and text for any address-like input (canonical, leading zeros, out of range, spaces, IPv6)", () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{1,4}$/));
    const input = fc.oneof(
      fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
      fc.tuple(fc.constantFrom('', ' '), fc.ipV4(), fc.constantFrom('', ' ', '\n')).map((p) => p.join('')),
      fc.ipV6(),
      fc.string(),
    );
    fc.assert(
      fc.property(input, (text) => {
        const full = parseIP(text);
        const got = parseIPText(text);
        expect(got && { family: got.family, text: got.text }).toEqual(full && { family: full.family, text: full.text });
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseCIDR', () => {
  it('trims, clears host bits and accepts leading zeros', () => {
    expect(parseCIDR(' 010.1.2.3/8 ')?.text).toBe('10.0.0.0/8');
    expect(parseCIDR('fd00:10::5/64')?.text).toBe('fd00:10::/64');
  });
  it('rejects bad prefixes', () => {
    expect(parseCIDR('10.0.0.0/33')).toBeNull();
    expect(parseCIDR('10.0.0.0')).toBeNull();
  });
  it('tests containment per family', () => {
    expect(cidrContainsText('10.0.0.0/8', '10.1.2.3')).toBe(true);
    expect(cidrContainsText('10.0.0.0/8', '11.1.2.3')).toBe(false);
    expect(cidrContainsText('::/0', '10.1.2.3')).toBe(false);
  });
});

describe('address intervals (what nft keeps of an anonymous interval set; outputs measured with nft 1.0.6)', () => {
  const merged = (...items: string[]) => mergeIntervals(items.map((i) => addressInterval(i)!)).map(formatInterval);

  it('merges what overlaps or touches and prints a prefix when the result is exactly one, else a range', () => {
    expect(merged('10.0.0.0/24', '10.0.1.0/25')).toEqual(['10.0.0.0-10.0.1.127']);
    expect(merged('10.0.0.0/24', '10.0.1.0/24', '10.9.0.1')).toEqual(['10.0.0.0/23', '10.9.0.1']);
    expect(merged('10.96.0.0/12', '10.96.0.0/16')).toEqual(['10.96.0.0/12']);
    expect(merged('10.96.0.0/12', '10.112.0.0/12')).toEqual(['10.96.0.0/11']);
    expect(merged('fd00::/112', 'fd00::1:0/112')).toEqual(['fd00::/111']);
    expect(merged('10.200.0.0/16', '10.96.0.0/12')).toEqual(['10.96.0.0/12', '10.200.0.0/16']);
    expect(merged('0.0.0.0/0', '10.0.0.0/8')).toEqual(['0.0.0.0/0']);
  });

  it('reads nft JSON ranges, refuses what is no interval, and tells whether an address is inside', () => {
    const r = addressInterval('10.0.0.0-10.0.1.127')!;
    expect(formatInterval(r)).toBe('10.0.0.0-10.0.1.127');
    expect(intervalContains(r, parseIP('10.0.1.127')!)).toBe(true);
    expect(intervalContains(r, parseIP('10.0.1.128')!)).toBe(false);
    expect(intervalContains(r, parseIP('fd00::1')!)).toBe(false);
    expect(addressInterval('10.0.1.0-10.0.0.0')).toBeNull();
    expect(addressInterval('10.0.0.0-fd00::1')).toBeNull();
    expect(addressInterval('veth-a')).toBeNull();
    expect(formatInterval(addressInterval('10.0.0.1/32')!)).toBe('10.0.0.1');
  });
});
