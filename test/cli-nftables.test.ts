/**
 * `render`, `diff` and `trace` with --mode=nftables, without root: render
 * through the real entry point (child process); diff and trace in process
 * against the fake nft (nftables/fake-nft.ts, the kernel's transaction
 * semantics) loaded with render's output, then damaged the way an operator
 * or another tool would.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeNft } from '../nftables/fake-nft.ts';
import { planFullSync } from '../nftables/full-sync.ts';
import { renderNftables } from '../nftables/render.ts';
import { servicePortNames, endpointNames } from '../nftables/names.ts';
import { normalizeRule } from '../nftables/rule-print.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import { silentLogger } from '../proxier/log.ts';
import { runCli } from '../src/commands.ts';
import { configFromFlags } from '../src/config.ts';
import { nftDesiredFromObjects, nftRenderOptionsFrom } from '../src/desired-nft.ts';
import { readObjects } from '../src/sources/read-objects.ts';
import { cli } from './cli-run.ts';
import { CLIENT, NODE1, NODE1_6, PODS } from './flow-cases.case.ts';
import { CLI_FLOWS, endpointOf, NFT_FLAGS, traceSummary, writeCliObjects } from './nft-cli.case.ts';

let objects: string;
let rendered: string;

/** A node whose `ip -j addr show` lists node-1's addresses. */
const nodeRunner: CommandRunner = {
  run: async (cmd, args) =>
    cmd === 'ip' && args.join(' ') === '-j addr show'
      ? { code: 0, stderr: '', stdout: JSON.stringify([{ addr_info: [{ local: '127.0.0.1' }, { local: NODE1 }, { local: NODE1_6 }] }]) }
      : { code: 127, stdout: '', stderr: `${cmd}: not in this test` },
};

async function run(argv: readonly string[], nft: FakeNft): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    makeLogger: () => silentLogger(),
    runner: nodeRunner,
    // node-1's interfaces, where diff wants the NodePorts (as the agent reads them).
    interfaceAddresses: () => ['127.0.0.1', NODE1, NODE1_6],
    nft,
  });
  return { code, out, err };
}

async function loaded(): Promise<FakeNft> {
  const nft = new FakeNft();
  await nft.run(rendered);
  return nft;
}

const web = { namespace: 'ns1', name: 'web', portName: 'p80', protocol: 'TCP' } as const;
const sticky = { namespace: 'ns1', name: 'sticky', portName: 'p80', protocol: 'TCP' } as const;

beforeAll(async () => {
  objects = await writeCliObjects();
  const r = await cli(['render', ...NFT_FLAGS, '--objects', objects]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  rendered = r.stdout;
}, 30_000);

describe('kube-proxy-ts render --mode=nftables', { timeout: 30_000 }, () => {
  it('prints one nft -f transaction for the ip table, then the ip6 one, and nothing else on stdout', async () => {
    const headers = rendered.split('\n').filter((l) => l.startsWith('#'));
    expect(headers).toHaveLength(2);
    expect(headers[0]).toMatch(
      /^# kube-proxy-ts IPv4 table ip kube-proxy for node node-1: 5 service ports, .*ClusterCIDR 10\.244\.0\.0\/16.*NodePorts on: 192\.168\.50\.11$/,
    );
    expect(headers[1]).toMatch(/^# kube-proxy-ts IPv6 table ip6 kube-proxy for node node-1: 1 service ports, .*NodePorts on: fd00:192:168:50::11$/);
    expect(rendered.split('\n').filter((l) => l && !l.startsWith('#') && !/^(add|flush|delete) /.test(l) && !/^\s/.test(l) && l !== '}')).toEqual([]);
    expect(rendered).toContain('add table ip kube-proxy');
    expect(rendered).toContain('add table ip6 kube-proxy');
    expect(rendered).toContain(`172.30.0.10 . tcp . 80 : goto ${servicePortNames(web).service}`);
  });

  it('loads into an empty nft, and again over itself (the fake enforces the kernel transaction rules)', async () => {
    const nft = new FakeNft();
    await nft.run(rendered);
    await nft.run(rendered);
    expect((await nft.list('ip'))?.chains.map((c) => c.name)).toContain(servicePortNames(web).external);
    expect((await nft.list('ip6'))?.sets.find((s) => s.name === 'service-ips')?.elements).toHaveLength(1);
  });

  it('writes the ServiceCIDR of each family from the ServiceCIDR object in --objects (upstream OnServiceCIDRsChanged)', async () => {
    const [v4, v6] = rendered.split(/^# .*ip6 kube-proxy.*$/m);
    expect(v4).toMatch(
      /^add chain ip kube-proxy cluster-ips-check \{.* ip daddr \{ 172\.30\.0\.0\/16 \} drop comment "Drop traffic to unallocated ClusterIPs" ; \}$/m,
    );
    expect(v6).toMatch(
      /^add chain ip6 kube-proxy cluster-ips-check \{.* ip6 daddr \{ fd00:172:30::\/112 \} drop comment "Drop traffic to unallocated ClusterIPs" ; \}$/m,
    );
  });

  it('prints only the family asked for', async () => {
    const r = await cli(['render', ...NFT_FLAGS, '--objects', objects, '--ip-family', 'IPv6']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('add table ip6 kube-proxy');
    expect(r.stdout).not.toMatch(/ ip kube-proxy/);
  });

  it.each([
    [['--no-jumps'], '--no-jumps applies to --mode=iptables only'],
    [['--iptables-random-fully=false'], '--iptables-random-fully applies to --mode=iptables only'],
  ])('refuses the iptables-only flag %j', async (extra, message) => {
    const r = await cli(['render', ...NFT_FLAGS, '--objects', objects, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('takes the mode from a config file (mode: nftables)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-nft-cli-'));
    const conf = join(dir, 'config.yaml');
    await writeFile(
      conf,
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nhostnameOverride: node-1\nclusterCIDR: 10.244.0.0/16,fd00:10:244::/56\n',
    );
    const r = await cli(['render', '--config', conf, '--objects', objects]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(rendered);
  });
});

describe('kube-proxy-ts diff --mode=nftables', { timeout: 30_000 }, () => {
  it('exits 0 when both tables hold exactly what render wrote', async () => {
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], await loaded());
    expect(r.err).toBe('');
    expect(r.out).toBe(
      'IPv4: converged: table ip kube-proxy holds exactly the desired chains, rules, sets and elements\n' +
        'IPv6: converged: table ip6 kube-proxy holds exactly the desired chains, rules, sets and elements\n',
    );
    expect(r.code).toBe(0);
  });

  it('exits 1 when there is no table at all', async () => {
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], new FakeNft());
    expect(r.code).toBe(1);
    expect(r.out).toContain('IPv4: table ip kube-proxy is missing from the kernel (5 service ports not programmed)');
    expect(r.out).toContain('IPv6: table ip6 kube-proxy is missing from the kernel (1 service ports not programmed)');
  });

  it('names the service of a deleted endpoint chain (ClientIP affinity: generation B keeps its endpoint chains), with the rules its service chain lost', async () => {
    const nft = await loaded();
    const svcChain = servicePortNames(sticky).service;
    const ep = endpointNames(sticky, { ip: PODS['pod-b'].ip, port: 8080 });
    await nft.run(`flush chain ip kube-proxy ${svcChain}\ndelete chain ip kube-proxy ${ep.chain}\n`);
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], nft);
    expect(r.code).toBe(1);
    const v4 = r.out.split('IPv6')[0]!;
    expect(v4).toMatch(/^IPv4 \(table ip kube-proxy\): 2 objects differ\n  ns1\/sticky:p80\/TCP\n/);
    expect(v4).toContain(`    chain ${ep.chain}: missing from the kernel\n`);
    expect(v4).toContain(`    chain ${svcChain}: 3 missing, 0 unexpected rules\n`);
    expect(v4).toContain(`      + ip saddr @${ep.affinitySet} goto ${ep.chain}\n`);
    expect(v4).toMatch(/\+ numgen random mod 2 vmap \{ 0 : goto endpoint-/);
    expect(r.out).toContain('IPv6: converged');
  });

  it('names the service of a changed map element and of an extra element pointing at its chain', async () => {
    const nft = await loaded();
    const stickyChain = servicePortNames(sticky).service;
    await nft.run(
      'delete element ip kube-proxy no-endpoint-services { 172.30.0.20 . tcp . 80 }\n' +
        'add element ip kube-proxy no-endpoint-services { 172.30.0.20 . tcp . 80 comment "ns1/none:p80" : drop }\n' +
        `add element ip kube-proxy service-ips { 172.30.0.99 . tcp . 80 : goto ${stickyChain} }\n`,
    );
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], nft);
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      '  ns1/none:p80/TCP\n    map no-endpoint-services: 0 missing, 0 unexpected, 1 changed elements\n' +
        '      ~ 172.30.0.20 . tcp . 80 comment "ns1/none:p80" : goto reject-chain (kernel: 172.30.0.20 . tcp . 80 comment "ns1/none:p80" : drop)\n',
    );
    expect(r.out).toContain(
      `  ns1/sticky:p80/TCP\n    map service-ips: 0 missing, 1 unexpected, 0 changed elements\n      - 172.30.0.99 . tcp . 80 : goto ${stickyChain}\n`,
    );
  });

  it("names a removed service by its leftover chain's name, and groups fixed and foreign objects", async () => {
    const nft = await loaded();
    await nft.run(
      'add chain ip kube-proxy service-ABCDEFGH-ns2/gone/udp/dns\n' +
        'add rule ip kube-proxy service-ABCDEFGH-ns2/gone/udp/dns ip daddr 10.9.9.9 drop\n' +
        'add chain ip kube-proxy my-own-chain\n' +
        'add rule ip kube-proxy services ip daddr 10.1.2.3 drop\n' +
        'add element ip kube-proxy cluster-ips { 172.30.9.9 }\n',
    );
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], nft);
    expect(r.code).toBe(1);
    expect(r.out).toContain('  ns2/gone:dns/UDP\n    chain service-ABCDEFGH-ns2/gone/udp/dns: in the kernel but not desired\n');
    expect(r.out).toContain('  fixed objects\n    chain services: 0 missing, 1 unexpected rules\n      - ip daddr 10.1.2.3 drop\n');
    expect(r.out).toContain(
      '  objects no desired service owns\n    chain my-own-chain: in the kernel but not desired\n' +
        '    set cluster-ips: 0 missing, 1 unexpected, 0 changed elements\n      - 172.30.9.9\n',
    );
  });

  it('exits 0 when the only difference is a flushed per-service chain awaiting its deletion, and says so', async () => {
    const nft = await loaded();
    await nft.run('add chain ip kube-proxy endpoint-ABCDEFGH-ns2/gone/udp/dns__10.244.1.9/53\n');
    const r = await run(['diff', ...NFT_FLAGS, '--objects', objects], nft);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'IPv4: converged: table ip kube-proxy holds exactly the desired chains, rules, sets and elements; ' +
        '1 stale per-service chains, flushed, await deletion at a later sync (endpoint-ABCDEFGH-ns2/gone/udp/dns__10.244.1.9/53)\n',
    );
  });
});

describe('kube-proxy-ts trace --mode=nftables', { timeout: 30_000 }, () => {
  /** The output without its "Ruleset:" line, each matched rule in canonical form (the live table lists rules that way). */
  const canonical = (out: string) =>
    out
      .split('\n')
      .slice(1)
      .map((l) => l.replace(/^( {2}ip6? kube-proxy\/\S+ #\d+: )(.*)$/, (_, head: string, rule: string) => head + normalizeRule(rule)))
      .join('\n');

  it.each(CLI_FLOWS)('$name: the live table and the rendered one trace alike', async (flow) => {
    const family = flow.ip.includes(':') ? 'IPv6' : 'IPv4';
    const live = await run(['trace', ...NFT_FLAGS, '--src', flow.src, '--dst', flow.dst], await loaded());
    const fromObjects = await run(['trace', ...NFT_FLAGS, '--objects', objects, '--src', flow.src, '--dst', flow.dst], new FakeNft());
    expect(live.code).toBe(0);
    expect(fromObjects.code).toBe(0);
    expect(live.out.split('\n')[0]).toBe(`Ruleset: live (nftables, table ${family === 'IPv4' ? 'ip' : 'ip6'} kube-proxy)`);
    expect(fromObjects.out.split('\n')[0]).toMatch(/^Ruleset: rendered from .* for node node-1 \(nftables, table ip6? kube-proxy\)$/);
    expect(canonical(live.out)).toBe(canonical(fromObjects.out));
    const s = traceSummary(live.out);
    if (Array.isArray(flow.expect)) {
      expect(s.verdict).toBe('ACCEPT');
      expect(s.endpoints).toEqual(flow.expect.map((p) => endpointOf(p, family)).sort());
    } else {
      expect(s.verdict).toBe(flow.expect);
      expect(s.endpoints).toEqual([]);
    }
    if (flow.masquerade !== undefined) expect(s.masquerade).toBe(flow.masquerade ? 'yes' : 'no');
  });

  it('shows the rules a rejected packet matched, as the iptables trace does', async () => {
    const r = await run(['trace', ...NFT_FLAGS, '--src', PODS['pod-a'].ip, '--dst', '172.30.0.20:80'], await loaded());
    expect(r.out).toContain('Packet: TCP 10.244.1.2 -> 172.30.0.20:80 (arriving)\nVerdict: REJECT; masquerade: no\nEndpoints: (none: no DNAT)\n');
    expect(r.out).toContain('  ip kube-proxy/service-endpoints-check #1: ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n');
    expect(r.out).toContain('  ip kube-proxy/reject-chain #1: reject\n');
  });

  it('treats a packet from a node address as generated on the node', async () => {
    const r = await run(['trace', ...NFT_FLAGS, '--src', NODE1, '--dst', '172.30.0.10:80'], await loaded());
    expect(r.out).toContain('(generated on the node)');
    expect(r.out).toContain('ip kube-proxy/nat-output #1: jump services');
  });

  it('exits 1 when the node has no table of that family, 2 on a bad packet', async () => {
    const none = await run(['trace', ...NFT_FLAGS, '--src', CLIENT, '--dst', '172.30.0.10:80'], new FakeNft());
    expect(none.code).toBe(1);
    expect(none.err).toBe('error: there is no table ip kube-proxy on this node to trace\n');
    const mixed = await run(['trace', ...NFT_FLAGS, '--src', CLIENT, '--dst', '[fd00:172:30::10]:80'], await loaded());
    expect(mixed.code).toBe(2);
    expect(mixed.err).toContain('are of different IP families');
  });
});

describe('kube-proxy-ts trace --mode=nftables over a live generation B table (upstream v1.36+)', { timeout: 30_000 }, () => {
  /** The fake nft holding both families' generation B tables for the CLI objects, as an agent rendering B would load them. */
  async function loadedB(): Promise<FakeNft> {
    const config = configFromFlags(new Map([...NFT_FLAGS].map((f) => f.replace(/^--/, '').split('=') as [string, string])));
    const desired = nftDesiredFromObjects(await readObjects(objects), config);
    const nft = new FakeNft();
    for (const snapshot of desired.snapshots) {
      const render = renderNftables(snapshot, { ...nftRenderOptionsFrom(config), generation: 'B' });
      await nft.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
    }
    return nft;
  }

  it.each(CLI_FLOWS)('$name: the same verdict, endpoints and masquerade as over generation A', async (flow) => {
    const a = await run(['trace', ...NFT_FLAGS, '--src', flow.src, '--dst', flow.dst], await loaded());
    const b = await run(['trace', ...NFT_FLAGS, '--src', flow.src, '--dst', flow.dst], await loadedB());
    expect(b.code).toBe(0);
    expect(b.err).toBe('');
    expect(b.out).not.toMatch(/kube-proxy\/endpoint-/); // no endpoint chains without affinity
    expect(traceSummary(b.out)).toEqual(traceSummary(a.out));
  });

  it('shows the numgen map DNAT, and the hairpin masquerade of the pod that reaches itself through its service', async () => {
    const r = await run(['trace', ...NFT_FLAGS, '--src', PODS['pod-a'].ip, '--dst', '172.30.0.10:80'], await loadedB());
    expect(traceSummary(r.out)).toEqual({
      verdict: 'ACCEPT',
      endpoints: ['10.244.1.2:8080', '10.244.2.2:8080'],
      masquerade: 'depends on the branch',
    });
    const dnat =
      'ip kube-proxy/service-LV5ZVUGQ-ns1/web/tcp/p80 #1: meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.1.2 . 8080, 1 : 10.244.2.2 . 8080 }';
    const [toPodC, toItself] = r.out.split(/^Branch 2 of 2/m);
    expect(toPodC).toContain('Branch 1 of 2 (50%): ACCEPT, DNAT to 10.244.2.2:8080, masquerade: no\n');
    expect(toPodC).toContain(dnat);
    expect(toItself).toContain(' (50%): ACCEPT, DNAT to 10.244.1.2:8080, masquerade: yes\n');
    expect(toItself).toContain(dnat);
    expect(toItself).toContain(
      '  ip kube-proxy/masquerading #2: ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random\n',
    );
  });
});
