/**
 * kube-proxy-ts's version, as `--version` prints it (package.json's, checked by
 * src/version.test.ts: the bundle the image runs carries no package.json).
 */
export const VERSION = '0.1.0';

/**
 * The Kubernetes release whose kube-proxy kube-proxy-ts stands in for, as /statusz names it (`Emulation version`,
 * where upstream gives its compatibility version's major.minor): v1.36, whose defaults (the z-pages' gates among them)
 * the agent keeps; it takes some v1.37 additions too (feature-gates.ts, --nodeport-addresses keywords).
 */
export const EMULATED_KUBERNETES = '1.36';

/**
 * What component-base's verflag does with `--version` (a bare flag or
 * `--version=true|false|raw`): the text to print, or null when the agent should
 * run; `rest` is argv without the flag; `error` for a value verflag refuses.
 */
export function versionRequest(argv: readonly string[]): { print: string | null; rest: string[]; error?: string } {
  let print: string | null = null;
  const rest: string[] = [];
  for (const arg of argv) {
    const m = /^--version(?:=(.*))?$/.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    const value = m[1] ?? 'true';
    // strconv.ParseBool's spellings, and "raw".
    if (!['true', 'false', 'raw', '1', '0', 't', 'f', 'T', 'F', 'TRUE', 'FALSE', 'True', 'False'].includes(value))
      return { print: null, rest, error: `invalid argument "${value}" for "--version" flag: strconv.ParseBool: parsing "${value}": invalid syntax` };
    if (value === 'raw')
      print = `${JSON.stringify({ gitVersion: `v${VERSION}`, node: process.version, platform: `${process.platform}/${process.arch}` })}\n`;
    else if (/^(true|1|t)$/i.test(value)) print = `kube-proxy-ts v${VERSION}\n`;
  }
  return { print, rest };
}
