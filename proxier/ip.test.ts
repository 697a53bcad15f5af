import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrContainsText, parseCIDR, parseIP, parseIPText } from './ip.ts';

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
