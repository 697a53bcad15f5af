/**
 * The floors upstream enforces before using nftables mode, as pure checks
 * over data the caller gathers (`nft --version`, the kernel release from
 * uname, the environment):
 *
 * - nft >= 1.0.1 (knftables New): older nft parses the whole ruleset and can
 *   crash on objects newer tools wrote into other tables.
 * - kernel >= 5.13 (NFTablesKubeProxyKernelVersion, platformCheckSupported),
 *   a stand-in for "the host's nft is new enough to read what we write";
 *   skipped when KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK is non-empty.
 */

export const MIN_NFT_VERSION = '1.0.1';
export const MIN_KERNEL_VERSION = '5.13';
export const SKIP_KERNEL_CHECK_ENV = 'KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK';

function parseVersion(text: string): number[] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

function atLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i]!;
    if (a !== b) return a > b;
  }
  return true;
}

/** null when `nft --version` output is new enough; else the reason, for the operator. */
export function checkNftVersion(versionOutput: string): string | null {
  const m = /^nftables v(\S+)/.exec(versionOutput.trim());
  const v = m ? parseVersion(m[1]!) : null;
  if (v === null) return `cannot read the nft version from ${JSON.stringify(versionOutput.trim())}`;
  if (!atLeast(v, parseVersion(MIN_NFT_VERSION)!)) return `kube-proxy in nftables mode requires nft ${MIN_NFT_VERSION} or later (found ${m![1]})`;
  return null;
}

/** null when the kernel (uname -r, e.g. "6.1.0-18-amd64") is new enough or the check is skipped. */
export function checkKernelVersion(release: string, env: Readonly<Record<string, string | undefined>>): string | null {
  if ((env[SKIP_KERNEL_CHECK_ENV] ?? '') !== '') return null;
  const v = parseVersion(release.trim());
  if (v === null) return `cannot read the kernel version from ${JSON.stringify(release.trim())} (set ${SKIP_KERNEL_CHECK_ENV}=1 to skip the check)`;
  if (!atLeast(v, parseVersion(MIN_KERNEL_VERSION)!)) {
    const found = release.trim();
    return `kube-proxy in nftables mode requires kernel ${MIN_KERNEL_VERSION} or later (found ${found}; set ${SKIP_KERNEL_CHECK_ENV}=1 to skip the check)`;
  }
  return null;
}
