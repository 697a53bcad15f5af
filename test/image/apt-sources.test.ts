import { describe, expect, it } from 'vitest';
import { debianMirror, parseDeb822, parseSourcesList } from './apt-sources.ts';

// As on the test machine: comments inside paragraphs, two archives.
const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

describe('apt sources', () => {
  it('reads deb822 paragraphs, skipping comment lines and joining continuation lines', () => {
    const entries = parseDeb822(
      `${DEB822}\nTypes: deb deb-src\nURIs: http://a.example/debian\n  http://b.example/debian\nSuites: trixie\nComponents: main contrib\nEnabled: no\n`,
    );
    expect(entries.map((e) => e.uris)).toEqual([
      ['http://deb.debian.org/debian'],
      ['http://deb.debian.org/debian-security'],
      ['http://a.example/debian', 'http://b.example/debian'],
    ]);
    expect(entries[0]!.suites).toEqual(['bookworm', 'bookworm-updates']);
    expect(entries[2]).toMatchObject({ types: ['deb', 'deb-src'], components: ['main', 'contrib'], enabled: false });
  });

  it('reads one-line entries with options and trailing comments', () => {
    expect(
      parseSourcesList(
        '# deb http://old.example/debian buster main\ndeb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian/ bookworm main non-free # local\n',
      ),
    ).toEqual([{ types: ['deb'], uris: ['https://mirror.example/debian/'], suites: ['bookworm'], components: ['main', 'non-free'], enabled: true }]);
  });

  it('picks the main archive, not security or updates, and drops a trailing slash', () => {
    const security = { path: '/etc/apt/sources.list.d/security.sources', text: DEB822.split('\n\n')[1]! };
    expect(debianMirror([security, { path: '/etc/apt/sources.list.d/debian.sources', text: DEB822 }])).toBe('http://deb.debian.org/debian');
    expect(
      debianMirror([
        { path: '/etc/apt/sources.list', text: 'deb-src http://src.example/debian bookworm main\ndeb http://m.example/debian/ bookworm main\n' },
      ]),
    ).toBe('http://m.example/debian');
  });

  it('skips disabled entries and entries without main', () => {
    const text =
      'Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\nTypes: deb\nURIs: http://contrib.example/debian\nSuites: bookworm\nComponents: contrib\n\nTypes: deb\nURIs: http://on.example/debian\nSuites: bookworm\nComponents: main\n';
    expect(debianMirror([{ path: 'x.sources', text }])).toBe('http://on.example/debian');
  });

  it('names the files it read when none has a usable entry', () => {
    expect(() =>
      debianMirror([{ path: '/etc/apt/sources.list', text: 'deb http://security.example/debian-security bookworm-security main\n' }]),
    ).toThrow(/no Debian mirror found.*\/etc\/apt\/sources\.list/);
    expect(() => debianMirror([])).toThrow(/no apt sources file/);
  });
});
