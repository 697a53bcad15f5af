/**
 * The transaction text is locked byte for byte: these files were written by
 * the writer as it was before the full-sync speed-up (commit 572472e), and
 * every faster writer must produce the same text for the same input. They
 * were written again once since, when snapshots came to be ordered by Service
 * as the agent's proxier orders them: the same lines, set elements and
 * transactions in that order. Small
 * clusters are compared as text (readable diffs), a 1,000-service-port cluster
 * with every shape by its SHA-256 and length. They hold generation A's text
 * (upstream v1.33-1.35), the one the writer wrote then: every render here pins
 * generation A.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { planColdStart } from './cold-start.ts';
import { planFullSync } from './full-sync.ts';
import { planPartialSync } from './partial-sync.ts';
import { NftRenderCache, renderNftables } from './render.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';
import type { SyncPlan } from './sync-state.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const golden = (name: string) => `./testdata/golden/${name}`;
/** The render options of the goldens: generation A (upstream v1.33-1.35), which they were written with. */
const shapesA = (family: IPFamily) => ({ ...shapesOptions(family), generation: 'A' as const });
const upstreamA = (family: IPFamily) => upstreamOptions(family, { generation: 'A' });
const all = (p: SyncPlan) =>
  [
    `# cleanup (${p.cleanupChains.join(' ')})`,
    p.cleanup,
    '# main',
    p.text,
    ...[...p.more].map((t, i) => `# more ${i}\n${t}`),
    `# operations ${p.operations}`,
  ].join('\n');

/** n service ports of every kind, one in 7 with affinity, NodePorts, LBs with source ranges, eTP/iTP Local, some without endpoints. */
function mixedCluster(family: IPFamily, n: number) {
  const v6 = family === 'IPv6';
  const ip = (a: number, i: number) =>
    v6 ? `fd00:${a}::${(i >> 8).toString(16)}:${(i & 255).toString(16)}` : `${a}.${(i >> 8) & 255}.${i & 255}.${(i % 200) + 1}`;
  const services: unknown[] = [];
  const slices: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const o: Record<string, unknown> = {
      clusterIPs: [v6 ? `fd00:172:30::${i.toString(16)}` : `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`],
      ports: [
        { name: 'p80', port: 80, targetPort: 8080, ...(i % 5 === 0 ? { nodePort: 30000 + i } : {}) },
        ...(i % 9 === 0 ? [{ name: 'dns', port: 53, protocol: 'UDP' }] : []),
      ],
    };
    if (i % 5 === 0) o['type'] = 'NodePort';
    if (i % 11 === 0)
      Object.assign(o, {
        type: 'LoadBalancer',
        ingress: [{ ip: ip(1, i) }],
        loadBalancerSourceRanges: i % 22 === 0 ? [v6 ? '2001:db8::/64' : '192.168.0.0/24'] : [],
        ...(i % 33 === 0 ? { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000 + i } : {}),
      });
    if (i % 7 === 0) Object.assign(o, { sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 + i });
    if (i % 13 === 0) o['externalIPs'] = [ip(2, i)];
    if (i % 17 === 0) o['internalTrafficPolicy'] = 'Local';
    services.push(
      makeService('bench', `svc-${i}`, {
        ...(o['nodePort'] ? {} : {}),
        ...o,
        ports: (o['ports'] as Record<string, unknown>[]).map((p) => ({ ...p })),
      }),
    );
    if (i % 19 === 0) continue; // no endpoints
    slices.push(
      makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
        endpoints: Array.from({ length: 1 + (i % 5) }, (_, j) => ({ ip: ip(10, i * 8 + j), nodeName: j === 0 ? TEST_NODE : 'other' })),
        ports: [{ name: 'p80', port: 8080 }, ...(i % 9 === 0 ? [{ name: 'dns', port: 53, protocol: 'UDP' }] : [])],
      }),
    );
  }
  return { services, slices };
}

/**
 * Service ports whose map and set keys collide: a ClusterIP shared by two ports, an external IP and port that three
 * services claim (the last one wins the key), an external IP equal to the port's own ClusterIP, a LoadBalancer VIP
 * equal to another service's external IP, one without endpoints. The cold start puts each key in the chunk of the
 * port that wins it, in the order the keys were first written.
 */
function conflictingKeys(family: IPFamily) {
  const v6 = family === 'IPv6';
  const c = (i: number) => (v6 ? `fd00:172:30::${i}` : `172.30.0.${i}`);
  const x = (i: number) => (v6 ? `2001:db8::${i}` : `192.168.99.${i}`);
  const ep = (i: number) => (v6 ? `fd00:10::${i}` : `10.180.0.${i}`);
  const services = [
    makeService('ns1', 'a', {
      clusterIPs: [c(1)],
      externalIPs: [x(1)],
      ports: [
        { name: 'p80', port: 80 },
        { name: 'p443', port: 443 },
      ],
    }),
    makeService('ns1', 'b', { clusterIPs: [c(2)], externalIPs: [x(1)], ports: [{ name: 'p80', port: 80 }] }),
    makeService('ns1', 'c', { clusterIPs: [c(3)], externalIPs: [c(3)], ports: [{ name: 'p80', port: 80 }] }),
    makeService('ns1', 'd', {
      type: 'LoadBalancer',
      clusterIPs: [c(4)],
      ingress: [{ ip: x(1) }],
      ports: [{ name: 'p443', port: 443, nodePort: 3004 }],
    }),
    makeService('ns1', 'e', { clusterIPs: [c(5)], externalIPs: [x(5), x(1)], ports: [{ name: 'p80', port: 80 }] }),
  ];
  const http = [
    { name: 'p80', port: 80 },
    { name: 'p443', port: 443 },
  ];
  const slices = ['a', 'b', 'c', 'e'].map((name, i) =>
    makeEndpointSlice('ns1', name, {
      endpoints: [
        { ip: ep(i + 1), nodeName: TEST_NODE },
        { ip: ep(i + 11), nodeName: 'other' },
      ],
      ports: http,
    }),
  );
  return { services, slices };
}

const sha = (text: string) => `sha256 ${createHash('sha256').update(text).digest('hex')} bytes ${Buffer.byteLength(text)}\n`;

describe('transaction text stays byte-identical (golden files from the writer before the full-sync speed-up, generation A: upstream v1.33-1.35)', () => {
  for (const family of ['IPv4', 'IPv6'] as const) {
    const f = family === 'IPv4' ? 'ip' : 'ip6';
    const render = () => renderNftables(shapesSnapshot(family), shapesA(family));

    it(`full sync of the shapes cluster, nothing known (${family})`, async () => {
      await expect(all(planFullSync(render(), { now: 1000, live: null, recreateBaseChains: true }))).toMatchFileSnapshot(
        golden(`${f}-full-unknown.nft`),
      );
    });

    it(`full sync of the shapes cluster over a listed table with stale chains and sets (${family})`, async () => {
      const r = render();
      const svcChains = r.services.flatMap((s) => s.chains.map((c) => c.name));
      const live = {
        chains: [
          ...r.fixed.chains.map((c) => c.name),
          ...svcChains.slice(1),
          'service-AAAAAAAA-ns9/gone/tcp/p80',
          'endpoint-BBBBBBBB-ns9/gone/tcp/p80__10.0.0.9/80',
          'old-chain',
          'due-chain',
        ],
        sets: [
          { name: 'cluster-ips', kind: 'set' as const },
          { name: 'old-map', kind: 'map' as const },
          { name: 'affinity-CCCCCCCC-x', kind: 'set' as const },
        ],
      };
      const previous = planFullSync(r, { now: 0, live: null, recreateBaseChains: true }).next;
      const withStale = {
        ...previous,
        stale: new Map([
          ['due-chain', 100],
          ['old-chain', 1900],
          ['service-AAAAAAAA-ns9/gone/tcp/p80', 50],
        ]),
      };
      await expect(all(planFullSync(r, { now: 2000, live, recreateBaseChains: false, previous: withStale }))).toMatchFileSnapshot(
        golden(`${f}-full-listed.nft`),
      );
    });

    it(`full syncs with a warm render cache write the same text (${family})`, async () => {
      const cache = new NftRenderCache();
      const first = planFullSync(renderNftables(shapesSnapshot(family), shapesA(family), cache), {
        now: 1000,
        live: null,
        recreateBaseChains: true,
      });
      const again = planFullSync(renderNftables(shapesSnapshot(family), shapesA(family), cache), {
        now: 1000,
        live: null,
        recreateBaseChains: true,
      });
      expect(again.text).toBe(first.text);
      await expect(all(again)).toMatchFileSnapshot(golden(`${f}-full-unknown.nft`));
    });

    it(`cold start of the shapes cluster in chunks of 2 service ports (${family})`, async () => {
      await expect(all(planColdStart(render(), { servicesPerTransaction: 2 }))).toMatchFileSnapshot(golden(`${f}-cold-start.nft`));
    });

    it(`cold start of service ports that write the same keys: each chunk keeps the elements' first-mention order (${family})`, async () => {
      const c = conflictingKeys(family);
      const r = renderNftables(upstreamSnapshot(family, c.services, c.slices), upstreamA(family));
      await expect(all(planColdStart(r, { servicesPerTransaction: 2 }))).toMatchFileSnapshot(golden(`${f}-cold-start-shared-keys.nft`));
    });

    it(`partial syncs between two mixed clusters (${family})`, async () => {
      const cache = new NftRenderCache();
      const a = mixedCluster(family, 40);
      const b = mixedCluster(family, 45);
      const first = planFullSync(renderNftables(upstreamSnapshot(family, a.services, a.slices), upstreamA(family), cache), {
        now: 0,
        live: null,
        recreateBaseChains: true,
      });
      const grown = planPartialSync(
        renderNftables(upstreamSnapshot(family, b.services, b.slices.slice(3)), upstreamA(family), cache),
        first.next,
        500,
      );
      const back = planPartialSync(renderNftables(upstreamSnapshot(family, a.services, a.slices), upstreamA(family), cache), grown.next, 2000);
      await expect([all(grown), all(back)].join('\n# ----\n')).toMatchFileSnapshot(golden(`${f}-partial.nft`));
    });

    it(`full sync and cold start of 1,000 mixed service ports, by hash (${family})`, async () => {
      const c = mixedCluster(family, 1000);
      const r = renderNftables(upstreamSnapshot(family, c.services, c.slices), upstreamA(family));
      const full = planFullSync(r, { now: 0, live: null, recreateBaseChains: true });
      const cold = planColdStart(r);
      await expect(
        `full ${sha(full.text)}cold ${sha([cold.text, ...cold.more].join('\0'))}operations ${full.operations} ${cold.operations}\n`,
      ).toMatchFileSnapshot(golden(`${f}-mixed-1000.sha256`));
    });
  }
});
