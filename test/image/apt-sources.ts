/**
 * Which Debian mirror this machine uses, read from its apt sources (deb822
 * `*.sources` files and one-line `sources.list` files), so the image test's
 * stand-in base is bootstrapped from the same mirror and no host name is
 * written into the project. Pure: the caller reads the files.
 *
 *   debianMirror([{ path: '/etc/apt/sources.list.d/debian.sources', text }])  // 'http://deb.debian.org/debian'
 */

export interface SourcesFile {
  readonly path: string;
  readonly text: string;
}

/** One `deb` / `deb-src` entry, whichever format it was written in. */
export interface AptSource {
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly enabled: boolean;
}

/** Entries of a deb822 file: paragraphs of `Field: value` lines, `#` comments, indented continuation lines. */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const paragraph of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | null = null;
    for (const line of paragraph.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^[ \t]/.test(line) && last !== null) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const words = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (!fields.has('uris')) continue;
    out.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      enabled: !/^no$/i.test(fields.get('enabled') ?? 'yes'),
    });
  }
  return out;
}

/** Entries of a one-line sources.list: `deb [options] URI suite component...`. */
export function parseSourcesList(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m) continue;
    out.push({ types: [m[1]!], uris: [m[2]!], suites: [m[3]!], components: m[4]!.trim().split(/\s+/).filter(Boolean), enabled: true });
  }
  return out;
}

/**
 * The URI of the first enabled `deb` entry for a release's main archive: a
 * suite without a `-updates` / `-security` / `-backports` suffix (those live
 * in other archives or lack the base packages), with the `main` component.
 */
export function debianMirror(files: readonly SourcesFile[]): string {
  for (const file of files) {
    const entries = file.path.endsWith('.sources') ? parseDeb822(file.text) : parseSourcesList(file.text);
    for (const e of entries) {
      if (!e.enabled || !e.types.includes('deb') || !e.components.includes('main')) continue;
      if (!e.suites.some((s) => /^[a-z]+$/.test(s))) continue;
      const uri = e.uris.find((u) => /^(https?|file):/.test(u));
      if (uri !== undefined) return uri.replace(/\/+$/, '');
    }
  }
  const read = files.map((f) => f.path).join(', ') || 'no apt sources file';
  throw new Error(`no Debian mirror found: no enabled "deb" entry with a release suite (e.g. bookworm) and component main in ${read}`);
}
