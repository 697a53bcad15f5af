/**
 * `render --mode=nftables`: the full-sync transaction a starting agent writes
 * (nftables/full-sync.ts: base chains re-created, every set and map flushed
 * and refilled, the live table unknown), for the `ip` table and then the `ip6`
 * one. `nft -f` reads a whole file as one transaction, so
 * `kube-proxy-ts render --mode=nftables ... | nft -f -` loads both tables into
 * a fresh network namespace at once, and reloading it over the same tables
 * changes nothing.
 */
import { planFullSync } from '../../nftables/full-sync.ts';
import { TABLE_NAME } from '../../nftables/model.ts';
import type { Logger } from '../../proxier/log.ts';
import type { IPFamily } from '../../proxier/types.ts';
import type { NftDesired } from '../desired-nft.ts';

export function nftRenderText(desired: NftDesired, only: IPFamily | null, log: Logger): string {
  const out: string[] = [];
  desired.snapshots.forEach((snapshot, i) => {
    if (only && snapshot.family !== only) return;
    const render = desired.renders[i]!;
    for (const w of render.warnings) log.warn({ ipFamily: snapshot.family }, w);
    const nodePorts = render.nodePortsMatchAll
      ? 'every local address but loopback'
      : render.fixed.sets
          .find((s) => s.name === 'nodeport-ips')
          ?.elements?.map((e) => e.key)
          .join(', ') || 'none';
    out.push(
      `# kube-proxy-ts ${snapshot.family} table ${render.family} ${TABLE_NAME} for node ${desired.nodeName}: ${snapshot.services.length} service ports, ` +
        `local traffic detection: ${render.localDetector.description}, NodePorts on: ${nodePorts}\n`,
    );
    out.push(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
  });
  return out.join('');
}
