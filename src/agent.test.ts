/**
 * The whole agent without root: startAgent on FakeIptables (both families),
 * a --objects directory as its source, a command runner that answers the few
 * commands the agent runs besides iptables, and the real clock with short
 * periods. What a node would see: the rules converge, an edit is a partial
 * sync, an outside flush is repaired through the canary, the other mode's
 * rules go at start, metrics and health follow, stop() leaves the rules.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { endpointChainName, serviceChainNames } from '../iptables/chain-names.ts';
import { diffRulesets } from '../iptables/diff.ts';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { IptablesMode } from '../iptables/iptables-mode.ts';
import { getChain } from '../iptables/ruleset.ts';
import type { CommandRunner, RunResult } from '../proxier/exec.ts';
import { silentLogger, type Logger } from '../proxier/log.ts';
import type { IPFamily } from '../proxier/types.ts';
import { makeEndpointSlice, makeNode, makeService, makeServiceCIDR } from '../test/builders.ts';
import { createLogger } from './log.ts';
import { VERSION } from './version.ts';
import { startAgent, type Agent } from './agent.ts';
import { configFromFlags } from './config.ts';
import type { NftablesNode } from './mode-nftables.ts';
import { diffTables, isEmptyDiff } from '../nftables/diff.ts';
import { nftFailure } from '../nftables/errors.ts';
import { FakeNft } from '../nftables/fake-nft.ts';
import { ENDPOINT_PREFIX, servicePortNames } from '../nftables/names.ts';
import type { NftablesMode } from '../nftables/nftables-mode.ts';
import { tableOf } from '../nftables/render.ts';
import type { ProxyModeName } from '../proxier/mode.ts';
import type { FlagValue } from './flags.ts';
import { realClock } from './system/clock.ts';
import { topCommand } from './cmd/top.ts';
import { logLines } from '../test/log-lines.ts';
import { hasIPv6Loopback } from '../test/ipv6-loopback.ts';
import { freePort } from '../test/free-port.ts';

/** Answers what the agent runs besides iptables (version, sysctls, conntrack) and records every command. */
function nodeRunner(): CommandRunner & { commands: string[] } {
  const commands: string[] = [];
  const ok = (stdout = '', stderr = ''): RunResult => ({ code: 0, stdout, stderr });
  return {
    commands,
    async run(cmd, args) {
      commands.push([cmd, ...args].join(' '));
      if (cmd === 'iptables' && args[0] === '--version') return ok('iptables v1.8.9 (nf_tables)\n');
      if (cmd === 'cat') return ok('0\n');
      if (cmd === 'tee') return ok();
      // Loopback only: the Node's 192.168.0.2 is on no interface of this node.
      if (cmd === 'ip' && args.join(' ') === '-j addr show')
        return ok(JSON.stringify([{ ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], addr_info: [{ local: '127.0.0.1' }, { local: '::1' }] }]));
      if (cmd === 'conntrack') return { code: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' };
      return { code: 127, stdout: '', stderr: `${cmd}: not found\n` };
    },
  };
}

const SVC = makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] });
const slice = (ips: string[]) =>
  makeEndpointSlice('ns1', 'web', 'web-s1', { endpoints: ips.map((ip) => ({ ip, nodeName: 'node-1' })), ports: [{ name: 'p80', port: 8080 }] });
const NODE = makeNode('node-1', { addresses: ['192.168.0.2'], podCIDR: '10.244.1.0/24' });

let dir = '';
let agent: Agent | null = null;
afterEach(async () => {
  await agent?.stop();
  agent = null;
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(
  mode: ProxyModeName,
  fakes: Map<IPFamily, FakeIptables>,
  runner = nodeRunner(),
  opts: {
    nftables?: NftablesNode;
    extra?: [string, FlagValue][];
    logger?: Logger;
    objects?: unknown[];
    /** Where the healthCheckNodePort servers listen; null: where the agent's configuration says. */
    serviceHealthHosts?: readonly string[] | null;
    /** The node's Node object (default NODE). */
    node?: unknown;
    /** This host's interface addresses, read at each sync (default: what the runner's `ip -j addr show` lists). */
    interfaceAddresses?: () => readonly string[];
    /** The command line's flags for /flagz (run.ts: flagzFlags). */
    flagz?: Readonly<Record<string, string>>;
  } = {},
) {
  const { nftables, extra = [], objects = [], node = NODE } = opts;
  dir = await mkdtemp(join(tmpdir(), 'kpt-agent-'));
  const write = (ips: string[], more = objects) =>
    writeFile(join(dir, 'objects.yaml'), [node, SVC, slice(ips), ...more].map((d) => dump(d)).join('---\n'));
  await write(['10.244.1.5']);
  const flags: [string, FlagValue][] = [
    ['objects', dir],
    ['hostname-override', 'node-1'],
    ['cluster-cidr', '10.244.0.0/16'],
    ['proxy-mode', mode],
    ['iptables-min-sync-period', 0],
    ['iptables-sync-period', 400],
    ['healthz-bind-address', '127.0.0.1:0'],
    ['metrics-bind-address', ''],
    ...extra,
  ];
  agent = await startAgent(configFromFlags(new Map(flags)), {
    runner,
    clock: realClock,
    logger: opts.logger ?? silentLogger(),
    osHostname: () => 'node-1',
    iptablesBackend: 'nft',
    iptables: fakes,
    ...(opts.serviceHealthHosts === null ? {} : { serviceHealthHosts: opts.serviceHealthHosts ?? ['127.0.0.1'] }),
    ...(opts.interfaceAddresses ? { interfaceAddresses: opts.interfaceAddresses } : {}),
    ...(nftables ? { nftables } : {}),
    ...(opts.flagz ? { flagz: opts.flagz } : {}),
  });
  return { agent, runner, write };
}

const both = () =>
  new Map<IPFamily, FakeIptables>([
    ['IPv4', new FakeIptables({ family: 'IPv4' })],
    ['IPv6', new FakeIptables({ family: 'IPv6' })],
  ]);
const svcChain = serviceChainNames({ key: 'ns1/web:p80', protocol: 'TCP' }).svc;
const converged = (a: Agent, fake: FakeIptables) => {
  const desired = (a.mode as IptablesMode).lastRender(fake.family);
  return desired !== null && diffRulesets(desired.ruleset, fake.snapshot()).identical;
};
const metric = async (a: Agent, line: string) => (await a.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(line));

describe('the agent on FakeIptables: /debug pages and traffic metrics (kubernetes/kubernetes#74677, #18519)', () => {
  it('answers /debug/rules and /debug/services, exports the KUBE-SEP counters per endpoint, and rate-limits /debug with 429', async () => {
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const ipv4 = fakes.get('IPv4')!;
    const { agent: a, write } = await start('iptables', fakes, nodeRunner(), {
      extra: [
        ['metrics-bind-address', '127.0.0.1:0'],
        ['traffic-counters', true],
        ['traffic-counters-period', 100],
      ],
    });
    await write(['10.244.1.5', '10.244.1.6']);
    await vi.waitFor(() => expect(getChain(ipv4.snapshot(), 'nat', svcChain)?.rules.join('\n')).toContain('10.244.1.6'), { timeout: 5000 });
    const url = a.metricsServer!.url;
    const sep = (ip: string) => endpointChainName({ key: 'ns1/web:p80', protocol: 'TCP' }, { ip, port: 8080 });
    ipv4.count('nat', sep('10.244.1.5'), '-j DNAT', 7, 420);
    await vi.waitFor(
      async () =>
        expect(await (await fetch(`${url}/metrics`)).text()).toContain(
          'kubeproxy_ts_endpoint_packets_total{service="ns1/web:p80",endpoint="10.244.1.5:8080"} 7',
        ),
      { timeout: 5000 },
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('kubeproxy_ts_endpoint_bytes_total{service="ns1/web:p80",endpoint="10.244.1.5:8080"} 420');
    expect(metrics).toContain('kubeproxy_ts_endpoint_packets_total{service="ns1/web:p80",endpoint="10.244.1.6:8080"} 0');

    const rules = await (await fetch(`${url}/debug/rules`)).text();
    expect(rules).toMatch(/^# IPv4: applied at \S+ by a (full|partial) sync/m);
    expect(rules).toContain(`-A ${sep('10.244.1.6')} `);
    expect(rules).toContain('# IPv4: no refused input');
    const services = await (await fetch(`${url}/debug/services`)).text();
    expect(services).toContain('ns1/web:p80 TCP 172.30.0.10:80');
    expect(services).toContain(svcChain);
    expect(services).toMatch(new RegExp(`10\\.244\\.1\\.5:8080 +ready +node-1 \\(local\\) +${sep('10.244.1.5')} +7 pkts +420 bytes`));
    const json = (await (await fetch(`${url}/debug/services?format=json`)).json()) as {
      services: { endpoints: { endpoint: string; packets: number }[] }[];
    }[];
    expect(json[0]!.services[0]!.endpoints.map((e) => [e.endpoint, e.packets])).toEqual([
      ['10.244.1.5:8080', 7],
      ['10.244.1.6:8080', 0],
    ]);
    expect((await fetch(`${url}/debug/rules?family=IPv6`)).status).toBe(400);
    // /debug/traffic answers the last reading (every --traffic-counters-period here), and says when it was taken.
    const traffic = (await (await fetch(`${url}/debug/traffic?format=json`)).json()) as { readNow: boolean; readAt: { IPv4: string } };
    expect(traffic.readNow).toBe(false);
    expect(Math.abs(Date.parse(traffic.readAt.IPv4) - Date.now())).toBeLessThan(60_000);
    // A burst of five, then one per second: ten more at once, and some must wait however slowly the three above ran.
    const burst = await Promise.all(Array.from({ length: 10 }, () => fetch(`${url}/debug/services`)));
    const limited = burst.find((r) => r.status === 429);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited!.text()).toContain('too many /debug requests');
    // /metrics is not limited.
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });

  it('without --traffic-counters: no endpoint series, no iptables-save -c', async () => {
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const { agent: a } = await start('iptables', fakes, nodeRunner(), { extra: [['metrics-bind-address', '127.0.0.1:0']] });
    await vi.waitFor(() => expect(converged(a, fakes.get('IPv4')!)).toBe(true), { timeout: 5000 });
    expect(await (await fetch(`${a.metricsServer!.url}/metrics`)).text()).not.toContain('kubeproxy_ts_endpoint_');
    expect(await (await fetch(`${a.metricsServer!.url}/debug/services`)).text()).toMatch(
      /10\.244\.1\.5:8080 +ready +node-1 \(local\) +KUBE-SEP-\S+\n/,
    );
  });
});

describe("the agent's nfacct counters in iptables mode (upstream newCTStateInvalidPacketsCollector, newLocalhostNodePortAcceptedPacketsCollector)", () => {
  /** nodeRunner, plus a node's nfacct tool: counters by name, as `nfacct list` prints them. */
  function withNfacct(packets: Record<string, number>): CommandRunner & { commands: string[] } {
    const base = nodeRunner();
    const counters = new Map<string, number>();
    const line = (n: string) => `{ pkts = ${String(packets[n] ?? counters.get(n)).padStart(20, '0')}, bytes = ${'0'.repeat(20)} } = ${n};\n`;
    return {
      commands: base.commands,
      async run(cmd, args, opts) {
        if (cmd !== 'nfacct') return base.run(cmd, args, opts);
        base.commands.push([cmd, ...args].join(' '));
        const [verb, name] = args;
        if (verb === 'list') return { code: 0, stdout: [...counters.keys()].map(line).join(''), stderr: '' };
        if (verb === 'get')
          return counters.has(name!)
            ? { code: 0, stdout: line(name!), stderr: '' }
            : { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: No such file or directory\n' };
        counters.set(name!, 0);
        return { code: 0, stdout: '', stderr: '' };
      },
    };
  }

  it('makes the counters, counts into them and exports both metrics from them', async () => {
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const runner = withNfacct({ ct_state_invalid_dropped_pkts: 7, localhost_nps_accepted_pkts: 2 });
    const { agent: a } = await start('iptables', fakes, runner);
    await vi.waitFor(() => expect(converged(a, fakes.get('IPv4')!)).toBe(true), { timeout: 5000 });
    expect(getChain(fakes.get('IPv4')!.snapshot(), 'filter', 'KUBE-FORWARD')?.rules[0]).toContain(
      '-m nfacct --nfacct-name ct_state_invalid_dropped_pkts',
    );
    expect(runner.commands).toContain('nfacct add ct_state_invalid_dropped_pkts');
    expect(await metric(a, 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total')).toBe(
      'kubeproxy_iptables_ct_state_invalid_dropped_packets_total 7',
    );
    expect(await metric(a, 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total')).toBe(
      'kubeproxy_iptables_localhost_nodeports_accepted_packets_total 2',
    );
  });

  it('without the nfacct tool: one warning naming the metrics, rules without counters, neither metric', async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const { agent: a } = await start('iptables', fakes, nodeRunner(), { logger });
    await vi.waitFor(() => expect(converged(a, fakes.get('IPv4')!)).toBe(true), { timeout: 5000 });
    expect(getChain(fakes.get('IPv4')!.snapshot(), 'filter', 'KUBE-FORWARD')?.rules[0]).toBe('-m conntrack --ctstate INVALID -j DROP');
    const said = logLines(lines.join('')).filter((l) => l.msg.includes('nfacct'));
    expect(said.map((l) => `${l.severity} ${l.msg.slice(0, 40)}`)).toEqual(['W nfacct counters cannot be made: the INVA']);
    expect(said[0]!.msg).toContain('kubeproxy_iptables_localhost_nodeports_accepted_packets_total are not exported');
    expect(await a.metrics.registry.metrics()).not.toContain('kubeproxy_iptables_');
  });
});

describe("the agent's own series", () => {
  it("records the --feature-gates it runs with as kube-proxy's RunE does (utilfeature.DefaultMutableFeatureGate.AddMetrics)", async () => {
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const { agent: a } = await start('iptables', fakes, nodeRunner(), { extra: [['feature-gates', { PreferSameTrafficDistribution: false }]] });
    expect(await metric(a, 'kubernetes_feature_enabled{name="PreferSameTrafficDistribution"')).toBe(
      'kubernetes_feature_enabled{name="PreferSameTrafficDistribution",stage=""} 0',
    );
    expect(await metric(a, 'kubernetes_feature_enabled{name="MultiCIDRServiceAllocator"')).toBe(
      'kubernetes_feature_enabled{name="MultiCIDRServiceAllocator",stage=""} 1',
    );
  });
});

describe("the agent's z-pages (serveMetrics: flagz.Install, statusz.Install)", () => {
  it('serves /flagz and /statusz on the metrics server with ComponentFlagz and ComponentStatusz on, as v1.36 has them by default; a gate off leaves its page 404 (Options.Complete makes no flagz reader; no statusz.Install)', async () => {
    const metricsOn: [string, FlagValue][] = [['metrics-bind-address', '127.0.0.1:0']];
    const get = async (a: Agent, path: string) => {
      const r = await fetch(a.metricsServer!.url + path);
      return { status: r.status, text: await r.text() };
    };
    let { agent: a } = await start('iptables', both(), nodeRunner(), { extra: metricsOn, flagz: { 'proxy-mode': 'iptables', v: '2' } });
    const flagz = await get(a, '/flagz');
    expect(flagz.status).toBe(200);
    expect(flagz.text).toMatch(/^\nkube-proxy flagz\nWarning: [^\n]+\nproxy-mode(:|: |=| )iptables\nv\1(2)\n$/);
    let statusz = await get(a, '/statusz');
    expect(statusz.status).toBe(200);
    expect(statusz.text).toMatch(/^\nkube-proxy statusz\n/);
    expect(statusz.text).toMatch(new RegExp(`^Binary version(:|: |=| ) ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
    expect(statusz.text).toMatch(/^Paths(:|: |=| ) \/debug \/flagz \/healthz \/metrics \/proxyMode$/m);
    await a.stop();
    ({ agent: a } = await start('iptables', both(), nodeRunner(), {
      extra: [...metricsOn, ['feature-gates', { ComponentFlagz: false }]],
      flagz: { 'proxy-mode': 'iptables' },
    }));
    expect(await get(a, '/flagz')).toEqual({ status: 404, text: '404 page not found\n' });
    statusz = await get(a, '/statusz');
    expect(statusz.status).toBe(200);
    expect(statusz.text).toMatch(/^Paths(:|: |=| ) \/debug \/healthz \/metrics \/proxyMode$/m);
    await a.stop();
    ({ agent: a } = await start('iptables', both(), nodeRunner(), { extra: [...metricsOn, ['feature-gates', { ComponentStatusz: false }]] }));
    expect(await get(a, '/statusz')).toEqual({ status: 404, text: '404 page not found\n' });
  });
});

describe("the agent's healthCheckNodePort servers on a dual-stack node", () => {
  it("serves an IPv6-only externalTrafficPolicy: Local service too (upstream: each family's proxier has its ServiceHealthServer), and counts a dual-stack service's pod once", async () => {
    const [hc, hcDual] = [await freePort(), await freePort()];
    const lb = (name: string, clusterIPs: string[], healthCheckNodePort: number, nodePort: number) =>
      makeService('ns1', name, {
        type: 'LoadBalancer',
        clusterIPs,
        externalTrafficPolicy: 'Local',
        healthCheckNodePort,
        ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort }],
      });
    const eps = (service: string, ips: [string, string][]) =>
      makeEndpointSlice('ns1', service, `${service}-${ips[0]![0].includes(':') ? 'v6' : 'v4'}`, {
        endpoints: ips.map(([ip, nodeName]) => ({ ip, nodeName })),
        ports: [{ name: 'p80', port: 8080 }],
      });
    const objects = [
      lb('v6lb', ['fd00:30::20'], hc, 30091),
      eps('v6lb', [
        ['fd00:244:1::5', 'node-1'],
        ['fd00:244:2::5', 'node-2'],
      ]),
      lb('dual', ['172.30.0.21', 'fd00:30::21'], hcDual, 30092),
      eps('dual', [['10.244.1.7', 'node-1']]),
      eps('dual', [['fd00:244:1::7', 'node-1']]),
    ];
    const { agent: a } = await start('iptables', both(), nodeRunner(), { objects });
    expect(a.families).toEqual(['IPv4', 'IPv6']);
    await vi.waitFor(() => expect(a.serviceHealth.ports().get('ns1/v6lb')).toBe(hc), { timeout: 3000 });
    const r = await fetch(`http://127.0.0.1:${hc}/`);
    expect([r.status, r.headers.get('x-load-balancing-endpoint-weight')]).toEqual([200, '1']);
    // One pod with an address of each family is one local endpoint, as each family's server upstream says.
    await vi.waitFor(async () => expect(await (await fetch(`http://127.0.0.1:${hcDual}/`)).json()).toMatchObject({ localEndpoints: 1 }), {
      timeout: 3000,
    });
  });
});

/**
 * An externalTrafficPolicy: Local load balancer with one endpoint on this node, its healthCheckNodePort a port free
 * on this host right now.
 */
async function localLoadBalancer() {
  const hc = await freePort();
  const lb = makeService('ns1', 'lb', {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.31',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: hc,
    ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: 30093 }],
  });
  const eps = makeEndpointSlice('ns1', 'lb', 'lb-s1', {
    endpoints: [{ ip: '10.244.1.8', nodeName: 'node-1' }],
    ports: [{ name: 'p80', port: 8080 }],
  });
  return { hc, lb, eps };
}

describe("the agent's healthCheckNodePort servers and --nodeport-addresses", () => {
  it.skipIf(!hasIPv6Loopback())(
    "listen only on the node addresses --nodeport-addresses selects, as upstream's newServiceHealthServer (GetNodeIPs), and everywhere without it",
    async () => {
      const { hc, lb, eps } = await localLoadBalancer();
      const reaches = async (host: string) => (await fetch(`http://${host}:${hc}/`).catch(() => null))?.status ?? 'refused';
      const fakes = () => new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
      const { agent: a } = await start('iptables', fakes(), nodeRunner(), {
        objects: [lb, eps],
        serviceHealthHosts: null,
        extra: [['nodeport-addresses', ['127.0.0.1/32']]],
      });
      await vi.waitFor(() => expect(a.serviceHealth.ports().get('ns1/lb')).toBe(hc), { timeout: 3000 });
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual([200, 'refused']);
      await a.stop();
      agent = null;
      const { agent: b } = await start('iptables', fakes(), nodeRunner(), { objects: [lb, eps], serviceHealthHosts: null });
      await vi.waitFor(() => expect(b.serviceHealth.ports().get('ns1/lb')).toBe(hc), { timeout: 3000 });
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual([200, 200]);
    },
  );
});

describe("the agent's healthCheckNodePort servers and a Node address that is not on an interface", () => {
  // A cloud node's Node object lists addresses no interface has (a NATed ExternalIP); upstream's GetNodeIPs selects
  // among the interface addresses (net.InterfaceAddrs), so such an address inside --nodeport-addresses is not bound.
  it('serves on the selected interface addresses (upstream newServiceHealthServer, GetNodeIPs) instead of failing to bind the Node address and opening nothing', async () => {
    const { hc, lb, eps } = await localLoadBalancer();
    const { agent: a } = await start('iptables', new Map([['IPv4', new FakeIptables({ family: 'IPv4' })]]), nodeRunner(), {
      objects: [lb, eps],
      serviceHealthHosts: null,
      // The Node object's 192.168.0.2 (no interface of nodeRunner's has it) and loopback.
      extra: [['nodeport-addresses', ['192.168.0.0/24', '127.0.0.0/8']]],
    });
    await vi.waitFor(() => expect(a.serviceHealth.ports().get('ns1/lb')).toBe(hc), { timeout: 3000 });
    expect((await fetch(`http://127.0.0.1:${hc}/`)).status).toBe(200);
  });
});

describe("the agent's healthCheckNodePort servers and --nodeport-addresses on an IPv4-only node that programs both families", () => {
  // Upstream runs a proxier per family whenever the kernel has both (platformCheckSupported), each with its own
  // ServiceHealthServer serving that family's services: the IPv6 one, whose --nodeport-addresses selection is every
  // address (no IPv6 CIDR listed, or "primary" with no IPv6 node IP), has no service to serve on an IPv4-only cluster.
  it.skipIf(!hasIPv6Loopback())(
    'an IPv4 service listens where the IPv4 selection says, not everywhere because the IPv6 family (no service of its own) selects every address (newServiceHealthServer per family)',
    async () => {
      const { hc, lb, eps } = await localLoadBalancer();
      const reaches = async (host: string) => (await fetch(`http://${host}:${hc}/`).catch(() => null))?.status ?? 'refused';
      const { agent: a } = await start('iptables', both(), nodeRunner(), {
        objects: [lb, eps],
        serviceHealthHosts: null,
        extra: [['nodeport-addresses', ['127.0.0.1/32']]],
      });
      expect(a.families).toEqual(['IPv4', 'IPv6']);
      await vi.waitFor(() => expect(a.serviceHealth.ports().get('ns1/lb')).toBe(hc), { timeout: 3000 });
      // Both families synced (the IPv6 snapshot is among those the hosts are chosen from).
      await vi.waitFor(() => expect(a.proxier.lastSynced('IPv6')).not.toBeNull(), { timeout: 3000 });
      // ...and the servers' sync that IPv6 sync queued has run.
      await (a.serviceHealth as unknown as { queue: Promise<void> }).queue;
      expect([await reaches('127.0.0.1'), await reaches('[::1]')]).toEqual([200, 'refused']);
    },
  );
});

describe("the agent's NodePort destinations and this host's interface addresses", () => {
  // A Node object lists what the cloud or kubelet reports (here an ExternalIP no interface has, a NATed address); the
  // host's interfaces hold addresses no Node object lists (a secondary IP, a keepalived VIP). Upstream's proxiers take the
  // NodePort destinations from NodePortAddresses.GetNodeIPs(networkInterfacer): the interface addresses inside
  // --nodeport-addresses, listed at every sync.
  const nodeWithExternalIP = makeNode('node-1', { addresses: ['192.168.0.2'], externalAddresses: ['192.168.0.200'], podCIDR: '10.244.1.0/24' });
  const tail = (rules: readonly string[] | undefined) => (rules ?? []).flatMap((r) => /-d (\S+?)(?:\/32)? -j KUBE-NODEPORTS$/.exec(r)?.[1] ?? []);

  it('iptables: one KUBE-NODEPORTS jump per interface address inside the CIDRs, none for a Node-only address; an address change is a partial sync of KUBE-SERVICES, an unchanged sync writes nothing (upstream syncProxyRules, GetNodeIPs)', async () => {
    let host = ['127.0.0.1', '192.168.0.2', '192.168.0.7', '10.9.0.1', '::1'];
    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const ipv4 = fakes.get('IPv4')!;
    const { agent: a } = await start('iptables', fakes, nodeRunner(), {
      node: nodeWithExternalIP,
      interfaceAddresses: () => host,
      extra: [['nodeport-addresses', ['192.168.0.0/24']]],
    });
    await vi.waitFor(() => expect(converged(a, ipv4)).toBe(true), { timeout: 5000 });
    expect(tail(getChain(ipv4.snapshot(), 'nat', 'KUBE-SERVICES')?.rules)).toEqual(['192.168.0.2', '192.168.0.7']);

    const restores = ipv4.restores.length;
    host = ['127.0.0.1', '192.168.0.2', '192.168.0.8', '10.9.0.1', '::1'];
    // No object changes: the periodic sync (every 400 ms here) reads the interfaces again.
    await vi.waitFor(() => expect(tail(getChain(ipv4.snapshot(), 'nat', 'KUBE-SERVICES')?.rules)).toEqual(['192.168.0.2', '192.168.0.8']), {
      timeout: 3000,
    });
    const written = ipv4.restores.slice(restores).filter((r) => r.text.includes('192.168.0.8'));
    expect(written).toHaveLength(1);
    expect(written[0]!.text).not.toContain('*filter');
    expect(written[0]!.text).not.toMatch(/^:KUBE-SVC-/m);
    // Unchanged interfaces: the periodic syncs that follow write nothing.
    const after = ipv4.restores.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(ipv4.restores.slice(after).map((r) => r.text)).toEqual([]);
  });

  it("nftables: nodeport-ips holds the interface addresses inside the CIDRs, 'primary' the node IP only while an interface has it; an address change is one partial transaction of nodeport-ips elements, an unchanged sync sends nothing (upstream setupNFTables, GetNodeIPs)", async () => {
    let host = ['127.0.0.1', '192.168.0.2', '192.168.0.7', '10.9.0.1', '::1'];
    const nft = new FakeNft();
    const elements = async (fake = nft) =>
      ((await fake.list('ip'))?.sets.find((set) => set.name === 'nodeport-ips')?.elements ?? []).map((e) => e.key).sort();
    const { agent: a } = await start('nftables', both(), nodeRunner(), {
      nftables: node(nft),
      node: nodeWithExternalIP,
      interfaceAddresses: () => host,
      extra: [['nodeport-addresses', ['192.168.0.0/24']]],
    });
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    expect(await elements()).toEqual(['192.168.0.2', '192.168.0.7']);

    const runs = nft.history.length;
    host = ['127.0.0.1', '192.168.0.2', '192.168.0.8', '10.9.0.1', '::1'];
    await vi.waitFor(async () => expect(await elements()).toEqual(['192.168.0.2', '192.168.0.8']), { timeout: 3000 });
    const sent = nft.history.slice(runs).filter((t) => t.includes('nodeport-ips'));
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toMatch(/add table|add chain|flush chain/);
    const after = nft.history.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(nft.history.slice(after)).toEqual([]);
    await a.stop();
    agent = null;

    // The nftables default, "primary": the Node's primary IP, while an interface has it (server.go makes it a /32 CIDR).
    host = ['127.0.0.1', '192.168.0.2', '::1'];
    const nft2 = new FakeNft();
    const { agent: b } = await start('nftables', both(), nodeRunner(), {
      nftables: node(nft2),
      node: nodeWithExternalIP,
      interfaceAddresses: () => host,
    });
    await vi.waitFor(async () => expect(await nftConverged(b, nft2, 'IPv4')).toBe(true), { timeout: 5000 });
    expect(await elements(nft2)).toEqual(['192.168.0.2']);
    host = ['127.0.0.1', '10.9.0.1', '::1'];
    await vi.waitFor(async () => expect(await elements(nft2)).toEqual([]), { timeout: 3000 });
  });
});

describe('the agent on FakeIptables', () => {
  it('converges both families, syncs an edit partially, repairs an outside flush through the canary, and leaves the rules at stop', async () => {
    const fakes = both();
    const ipv4 = fakes.get('IPv4')!;
    const { agent: a, runner, write } = await start('iptables', fakes);
    expect(a.families).toEqual(['IPv4', 'IPv6']);
    await vi.waitFor(() => expect(converged(a, ipv4)).toBe(true), { timeout: 5000 });
    expect(converged(a, fakes.get('IPv6')!)).toBe(true);
    expect(getChain(ipv4.snapshot(), 'nat', svcChain)?.rules.join('\n')).toContain('10.244.1.5');
    await vi.waitFor(() => expect(getChain(ipv4.snapshot(), 'mangle', 'KUBE-PROXY-CANARY')).toBeDefined(), { timeout: 5000 });
    expect(runner.commands).toContain('tee /proc/sys/net/ipv4/conf/all/route_localnet');
    expect(a.health.report().healthy).toBe(true);
    expect(await metric(a, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat",ip_family="IPv4"}')).toMatch(/ \d+$/);

    // An endpoint added in the file: a partial sync writes the service's chains only.
    const restores = ipv4.restores.length;
    await write(['10.244.1.5', '10.244.1.6']);
    await vi.waitFor(() => expect(getChain(ipv4.snapshot(), 'nat', svcChain)?.rules.join('\n')).toContain('10.244.1.6'), { timeout: 5000 });
    const partial = ipv4.restores.slice(restores).find((r) => r.text.includes('10.244.1.6'))!;
    expect(partial.text).not.toContain('*filter');
    expect(partial.text).not.toContain(':KUBE-SERVICES ');
    expect(await metric(a, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}')).toMatch(/ [1-9]\d*$/);

    // Someone flushes the tables wholesale: the canary check (every sync period) notices and everything comes back.
    for (const table of ['mangle', 'nat', 'filter']) await ipv4.restore(`*${table}\nCOMMIT\n`, { noflush: false, counters: false });
    expect(getChain(ipv4.snapshot(), 'nat', svcChain)).toBeUndefined();
    await vi.waitFor(() => expect(converged(a, ipv4)).toBe(true), { timeout: 5000 });
    await vi.waitFor(() => expect(getChain(ipv4.snapshot(), 'mangle', 'KUBE-PROXY-CANARY')).toBeDefined(), { timeout: 5000 });

    await a.stop();
    agent = null;
    expect(getChain(ipv4.snapshot(), 'nat', svcChain)?.rules.join('\n')).toContain('10.244.1.6');
  });

  it("removes the userspace mode's chains and jumps left by a previous run when it starts in iptables mode", async () => {
    const fakes = both();
    const ipv4 = fakes.get('IPv4')!;
    await ipv4.restore(
      '*nat\n:KUBE-PORTALS-CONTAINER - [0:0]\n-A KUBE-PORTALS-CONTAINER -p tcp -d 172.30.0.10/32 --dport 80 -j REDIRECT --to-ports 40000\n' +
        '-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER\nCOMMIT\n',
      { noflush: true, counters: false },
    );
    const { agent: a } = await start('iptables', fakes);
    expect(getChain(ipv4.snapshot(), 'nat', 'KUBE-PORTALS-CONTAINER')).toBeUndefined();
    await vi.waitFor(() => expect(converged(a, ipv4)).toBe(true), { timeout: 5000 });
    expect(getChain(ipv4.snapshot(), 'nat', 'PREROUTING')?.rules).toEqual(['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES']);
  });

  it('refuses to start without a working iptables of either family, naming the backend', async () => {
    await expect(start('iptables', new Map())).rejects.toThrow('neither iptables nor ip6tables (nft backend) works on this node');
  });
});

const PORTALS =
  '*nat\n:KUBE-PORTALS-CONTAINER - [0:0]\n-A KUBE-PORTALS-CONTAINER -p tcp -d 172.30.0.10/32 --dport 80 -j REDIRECT --to-ports 40000\n' +
  '-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER\nCOMMIT\n';
const node = (nft: FakeNft, over: Partial<NftablesNode> = {}): NftablesNode => ({
  nft,
  nftVersion: async () => 'nftables v1.0.6 (Lester Gooch #5)',
  kernelRelease: () => '6.1.0-18-amd64',
  env: {},
  ...over,
});
const nftConverged = async (a: Agent, nft: FakeNft, family: IPFamily) => {
  const desired = (a.mode as NftablesMode).lastRender(family);
  if (desired === null) return false;
  const d = diffTables(tableOf(desired), await nft.list(family === 'IPv4' ? 'ip' : 'ip6'));
  return isEmptyDiff({ ...d, extraChains: [] });
};

/** Generation B's DNAT map entries (render-endpoints.ts dnatMapRule) for 10.244.1.5, and 10.244.1.5 and .6. */
const ONE = '0 : 10.244.1.5 . 8080';
const TWO = 'map { 0 : 10.244.1.5 . 8080 , 1 : 10.244.1.6 . 8080 }';

describe('the agent in nftables mode on FakeNft', () => {
  it("removes both iptables modes' rules, converges both families, syncs an edit partially, repairs a deleted table, and leaves the table at stop", async () => {
    const fakes = both();
    const ipv4 = fakes.get('IPv4')!;
    const nft = new FakeNft();
    // A previous iptables-mode run (one rendered ruleset) and a userspace-mode one.
    const old = await start('iptables', fakes, nodeRunner());
    await vi.waitFor(() => expect(converged(old.agent, ipv4)).toBe(true), { timeout: 5000 });
    await old.agent.stop();
    await ipv4.restore(PORTALS, { noflush: true, counters: false });

    const { agent: a, write } = await start('nftables', fakes, nodeRunner(), { nftables: node(nft) });
    expect(a.families).toEqual(['IPv4', 'IPv6']);
    // All kube-proxy chains but kubelet's KUBE-FIREWALL (which the iptables mode writes too) are gone.
    const kubeChains = ipv4.snapshot().tables.flatMap((t) => t.chains.map((c) => c.name).filter((n) => n.startsWith('KUBE-')));
    expect(kubeChains).toEqual(['KUBE-FIREWALL']);
    expect(getChain(ipv4.snapshot(), 'nat', 'PREROUTING')?.rules).toEqual([]);
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    expect(await nftConverged(a, nft, 'IPv6')).toBe(true);
    // Generation B (upstream v1.36+): the service chain DNATs through a numgen map, no endpoint chain.
    expect(nft.dump('ip')).toContain(` dnat ip addr . port to numgen random mod 1 map { ${ONE} }`);
    expect(await metric(a, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}')).toMatch(/ [1-9]\d*$/);
    // Upstream's RegisterMetrics(ProxyModeNFTables) registers none of the iptables mode's rule counts.
    expect(await metric(a, '# TYPE kubeproxy_sync_proxy_rules_iptables_total')).toBeUndefined();

    // An endpoint added: one partial transaction with the delta only (the service chain's map, the local endpoint's
    // hairpin-connections element).
    const runs = nft.history.length;
    await write(['10.244.1.5', '10.244.1.6']);
    await vi.waitFor(() => expect(nft.dump('ip')).toContain(TWO), { timeout: 5000 });
    const delta = nft.history.slice(runs).find((t) => t.includes('10.244.1.6'))!;
    expect(delta).not.toMatch(/add table|filter-input|cluster-ips-check/);
    expect(delta).toMatch(
      /\nadd set ip kube-proxy hairpin-connections \{[^\n]* elements = \{ 10\.244\.1\.6 \. 10\.244\.1\.6 \. tcp \. 8080 \} ; \}\n/,
    );
    expect(await metric(a, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}')).toMatch(/ [1-9]\d*$/);

    // Someone deletes the table: monitor() (every sync period) notices and the full sync rebuilds it.
    await nft.deleteTable('ip');
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    expect(nft.dump('ip')).toContain(TWO);
    expect(await metric(a, 'kubeproxy_ts_outside_changes_total{ip_family="IPv4",kind="table"}')).toBe(
      'kubeproxy_ts_outside_changes_total{ip_family="IPv4",kind="table"} 1',
    );

    await a.stop();
    agent = null;
    expect(nft.dump('ip')).toContain(TWO);
  });

  it('answers /debug/rules (the table as nft -f input, a refused transaction with the line nft named) and /debug/services (chains, no counters)', async () => {
    /** Refuses the first transaction that adds 10.244.1.6, as nft would: stderr with `/dev/stdin:LINE:COL-COL: Error:`. */
    class RefusingNft extends FakeNft {
      refused = false;
      override async run(text: string): Promise<void> {
        if (!this.refused && text.includes('10.244.1.6')) {
          this.refused = true;
          throw nftFailure('nft -f -', { code: 1, stderr: '/dev/stdin:2:1-9: Error: Could not process rule: No such file or directory\n' }, text);
        }
        return super.run(text);
      }
    }
    const nft = new RefusingNft();
    const { agent: a, write } = await start('nftables', both(), nodeRunner(), {
      nftables: node(nft),
      extra: [['metrics-bind-address', '127.0.0.1:0']],
    });
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    await write(['10.244.1.5', '10.244.1.6']);
    // The refused transaction makes the next sync a full one, which nft takes.
    await vi.waitFor(() => expect(nft.dump('ip')).toContain(TWO), { timeout: 5000 });
    expect(nft.refused).toBe(true);

    const url = a.metricsServer!.url;
    const sp = { namespace: 'ns1', name: 'web', portName: 'p80', protocol: 'TCP' } as const;
    const chains = servicePortNames(sp);
    const rules = await (await fetch(`${url}/debug/rules?family=IPv4`)).text();
    expect(rules).toMatch(
      /^# kube-proxy-ts nftables mode\n# IPv4: applied at \S+ by a full sync \(\d+ bytes written\); nft input of every rule it owns now\nadd table ip kube-proxy /,
    );
    expect(rules).toContain(`\nadd chain ip kube-proxy ${chains.service}\n`);
    expect(rules).toContain(`\nadd rule ip kube-proxy ${chains.service} meta l4proto tcp dnat ip addr . port to numgen random mod 2 ${TWO}\n`);
    expect(rules).toMatch(
      /# IPv4: REFUSED at \S+ \(partial sync\):\n# nft -f - failed: Could not process rule: No such file or directory \(input line 2: /,
    );
    expect(rules).toContain(
      `\n# add chain ip kube-proxy ${chains.service} { meta l4proto tcp dnat ip addr . port to numgen random mod 2 ${TWO} ; }\n`,
    );
    const json = (await (await fetch(`${url}/debug/rules?family=IPv4&format=json`)).json()) as [
      { syntax: string; refused: { input: string; line: number } },
    ];
    expect(json[0].syntax).toBe('nft');
    expect(json[0].refused.line).toBe(2);
    expect(rules).toContain(`# the line it named, 2: ${json[0].refused.input.split('\n')[1]}\n`);

    const services = await (await fetch(`${url}/debug/services`)).text();
    expect(services).toContain('ns1/web:p80 TCP 172.30.0.10:80');
    expect(services).toContain(`  ${chains.service} cluster-ips[172.30.0.10] service-ips[172.30.0.10 . tcp . 80]\n`);
    // Generation B, no endpoint chains: each endpoint's entry in the service chain's DNAT map, and its
    // hairpin-connections element (local endpoints).
    const own = (ip: string, i: number) => `${chains.service} map[${i}] hairpin-connections[${ip} . ${ip} . tcp . 8080]`;
    expect(services).toContain(`\n  10.244.1.5:8080  ready  node-1 (local)  ${own('10.244.1.5', 0)}\n`);
    expect(services).toContain(`\n  10.244.1.6:8080  ready  node-1 (local)  ${own('10.244.1.6', 1)}\n`);
    expect(services).not.toContain(ENDPOINT_PREFIX);
    expect(services).toContain('# IPv6: 0 service port(s)');
    expect(services).not.toMatch(/pkts|bytes/);
  });

  it("/debug/traffic reads the named counters for the request; top --mode nftables shows the agent's totals while the agent resets them", async () => {
    /** Traffic keeps flowing: every `nft reset counters` finds 3 more packets on every counter (a reading at most 1 at a time). */
    class FlowingNft extends FakeNft {
      resets = 0;
      running = 0;
      most = 0;
      /** The next IPv4 resets that fail, as nft would. */
      failing = 0;
      override async counters(family: 'ip' | 'ip6', options: { reset?: boolean } = {}) {
        if (!options.reset) return super.counters(family, options);
        this.resets++;
        if (family === 'ip' && this.failing > 0 && this.failing--)
          throw new Error('nft -j reset counters failed: Error: Could not process rule: Device or resource busy');
        this.most = Math.max(this.most, ++this.running);
        await new Promise((r) => setTimeout(r, 5));
        for (const c of (await super.counters(family)) ?? []) this.count(family, c.name, 3, 180);
        const out = await super.counters(family, options);
        this.running--;
        return out;
      }
    }
    const nft = new FlowingNft();
    const { agent: a } = await start('nftables', both(), nodeRunner(), {
      nftables: node(nft),
      extra: [
        ['metrics-bind-address', '127.0.0.1:0'],
        ['traffic-counters', true],
        ['traffic-counters-period', 50],
      ],
    });
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    const url = a.metricsServer!.url;
    type Page = {
      mode: string;
      counting: boolean;
      readNow: boolean;
      failures: string[];
      readAt: { IPv4?: string | null };
      endpoints: { service: string; endpoint: string; packets: number }[];
    };
    const page = async (): Promise<Page> => (await (await fetch(`${url}/debug/traffic?format=json&family=IPv4`)).json()) as Page;
    const first = await page();
    expect(first).toMatchObject({ mode: 'nftables', counting: true, readNow: true });
    expect(Math.abs(Date.parse(first.readAt.IPv4!) - Date.now())).toBeLessThan(60_000);
    expect(first.endpoints.map((e) => [e.service, e.endpoint])).toEqual([['ns1/web:p80', '10.244.1.5:8080']]);
    // Each answer comes from a reading of its own: its total has grown since the last answer, whatever the period took.
    const second = await page();
    expect(second.endpoints[0]!.packets).toBeGreaterThan(first.endpoints[0]!.packets);
    expect((await page()).endpoints[0]!.packets).toBeGreaterThan(second.endpoints[0]!.packets);
    expect(await (await fetch(`${url}/debug/traffic`)).text()).toMatch(
      /^# kube-proxy-ts nftables mode: packets and bytes per endpoint since the agent started counting \(read from the kernel for this answer\)\n# IPv4: read at \S+Z\n# IPv6: read at \S+Z\nSERVICE +ENDPOINT +PACKETS +BYTES\nns1\/web:p80 +10\.244\.1\.5:8080 +\d+ +\d+\n$/,
    );
    expect(((await (await fetch(`${url}/debug/traffic?format=json&family=IPv6`)).json()) as Page).endpoints).toEqual([]);
    // Requests at once share readings: never two `nft reset` at a time.
    await Promise.all(Array.from({ length: 2 }, () => page()));
    expect(nft.most).toBe(1);
    // A reading nft refuses: the page names the family and keeps the last figures.
    const before = (await page()).endpoints[0]!.packets;
    nft.failing = 1;
    const refused = await page();
    expect(refused.failures).toEqual(['IPv4: nft -j reset counters failed: Error: Could not process rule: Device or resource busy']);
    expect(refused.endpoints[0]!.packets).toBe(before);
    expect((await page()).failures).toEqual([]);

    // The page's bucket emptied (another reader): the agent answers 429 with Retry-After, and top waits that long.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${url}/debug/traffic?format=json`).then((r) => r.status)));
    expect(statuses).toContain(429);

    // top reads the same page at each frame: every frame has the traffic, and the totals only grow, though the agent
    // zeroes the kernel's counters every 50 ms (top once read them from nft, and saw the counts since the agent's reading).
    const out: string[] = [];
    const hostPort = new URL(url).host;
    const code = await topCommand(['--mode', 'nftables', '--metrics-bind-address', hostPort, '--interval', '200ms', '--iterations', '3'], {
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void out.push(t),
      makeLogger: () => silentLogger(),
    });
    expect(code, out.join('')).toBe(0);
    expect(out.join('')).toContain(`IPv4 table ip kube-proxy via ${hostPort}`);
    const rows = [...out.join('').matchAll(/^ {2}10\.244\.1\.5:8080 +([\d.]+) +\S+ +100% +(\d+)/gm)];
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(Number(r[1])).toBeGreaterThan(0);
    const totals = rows.map((r) => Number(r[2]));
    expect(totals[1]).toBeGreaterThan(totals[0]!);
    expect(totals[2]).toBeGreaterThan(totals[1]!);
  });

  it('/debug/traffic without --traffic-counters says so, and top shows no endpoint; top against an iptables agent names its mode', async () => {
    const nft = new FakeNft();
    const { agent: a } = await start('nftables', both(), nodeRunner(), { nftables: node(nft), extra: [['metrics-bind-address', '127.0.0.1:0']] });
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
    const url = a.metricsServer!.url;
    expect(await (await fetch(`${url}/debug/traffic?format=json`)).json()).toEqual({
      mode: 'nftables',
      families: ['IPv4', 'IPv6'],
      counting: false,
      readNow: false,
      failures: [],
      readAt: {},
      endpoints: [],
    });
    expect(await (await fetch(`${url}/debug/traffic`)).text()).toBe(
      '# kube-proxy-ts nftables mode counts no traffic per endpoint: the agent runs without --traffic-counters\n',
    );
    const out: string[] = [];
    const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => void out.push(t), makeLogger: () => silentLogger() };
    const argv = (host: string) => ['--mode', 'nftables', '--metrics-bind-address', host, '--interval', '100ms', '--iterations', '1'];
    expect(await topCommand(argv(new URL(url).host), io)).toBe(0);
    expect(out.join('')).toContain('(no endpoint counted by the agent: it counts only with --traffic-counters)');
    await a.stop();
    agent = null;

    const fakes = new Map<IPFamily, FakeIptables>([['IPv4', new FakeIptables({ family: 'IPv4' })]]);
    const { agent: b } = await start('iptables', fakes, nodeRunner(), { extra: [['metrics-bind-address', '127.0.0.1:0']] });
    out.length = 0;
    expect(await topCommand(argv(new URL(b.metricsServer!.url).host), io)).toBe(1);
    expect(out.join('')).toMatch(/^error: the agent at 127\.0\.0\.1:\d+ runs in iptables mode, not nftables: run top --mode iptables\n$/);
  });

  it("logs upstream's start-up lines word for word (server_linux.go createProxier: `kubectl logs | grep Using` finds the mode)", async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    await start('nftables', both(), nodeRunner(), { nftables: node(new FakeNft()), logger });
    const logged = logLines(lines.join('')).map((l) => ({ msg: l.msg, ...l.fields }));
    const at = (msg: string) => logged.findIndex((l) => l.msg === msg);
    // klog writes the key with its space, as upstream's line shows it.
    expect(lines.join('')).toMatch(/\] "kube-proxy running in dual-stack mode" primary ipFamily="IPv4"\n/);
    expect(at('Using nftables Proxier')).toBeGreaterThan(at('kube-proxy running in dual-stack mode'));
    expect(logged[at('Version info')]).toMatchObject({ version: `v${VERSION}` });
    // The config controllers' lines (pkg/proxy/config Run, client-go WaitForNamedCacheSync), each kind once, in upstream's
    // words: what `kubectl logs | grep "Caches are synced"` looks for. The nftables mode watches ServiceCIDRs.
    const controllers = ['service config', 'endpoint slice config', 'serviceCIDR config', 'node config'];
    expect(logged.filter((l) => l.msg.startsWith('Starting ') && l.msg.endsWith(' config controller')).map((l) => l.msg)).toEqual(
      controllers.map((c) => `Starting ${c} controller`),
    );
    expect(
      logLines(lines.join(''))
        .filter((l) => l.msg === 'Waiting for caches to sync')
        .map((l) => l.fields['controller']),
    ).toEqual(controllers);
    await vi.waitFor(() => expect(logLines(lines.join('')).filter((l) => l.msg === 'Caches are synced')).toHaveLength(4));
    const synced = logLines(lines.join('')).filter((l) => l.msg === 'Caches are synced');
    expect(synced.map((l) => l.fields['controller']).sort()).toEqual([...controllers].sort());
    expect(lines.join('')).toMatch(/\] "Caches are synced" controller="service config"\n/);
    expect(logged.findIndex((l) => l.msg === 'Waiting for caches to sync')).toBeGreaterThan(at('Using nftables Proxier'));
  });

  it('drops unallocated ClusterIPs of the ServiceCIDRs in --objects, says which, and follows an edit of them', async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    const nft = new FakeNft();
    const cidr = (c: string) => makeServiceCIDR('kubernetes', [c]);
    const { write } = await start('nftables', both(), nodeRunner(), { nftables: node(nft), logger, objects: [cidr('172.30.0.0/16')] });
    const dropRule = () =>
      nft
        .dump('ip')
        .split('\n')
        .find((l) => l.includes('unallocated'));
    await vi.waitFor(() => expect(dropRule()).toContain('ip daddr { 172.30.0.0/16 } drop'), { timeout: 5000 });
    const said = () => logLines(lines.join('')).filter((l) => l.msg.startsWith('ServiceCIDRs changed'));
    expect(said().map((l) => l.msg)).toEqual(['ServiceCIDRs changed: 172.30.0.0/16']);
    await write(['10.244.1.5'], [cidr('172.31.0.0/16')]);
    await vi.waitFor(() => expect(dropRule()).toContain('ip daddr { 172.31.0.0/16 } drop'), { timeout: 5000 });
    expect(said().map((l) => l.msg)).toEqual(['ServiceCIDRs changed: 172.30.0.0/16', 'ServiceCIDRs changed: 172.31.0.0/16']);
  });

  it('sets the conntrack sysctls before it proxies and, when one is refused, says so, records a Node event and serves (upstream setSysctls exits)', async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    const runner = nodeRunner();
    const refusing: CommandRunner & { commands: string[] } = {
      commands: runner.commands,
      run: (cmd, args, opts) =>
        cmd === 'tee' && args[0] === '/proc/sys/net/netfilter/nf_conntrack_max'
          ? Promise.resolve({ code: 1, stdout: '', stderr: `tee: ${args[0]}: Permission denied\n` })
          : runner.run(cmd, args, opts),
    };
    const fakes = both();
    const { agent: a } = await start('iptables', fakes, refusing, { logger });
    await vi.waitFor(() => expect(converged(a, fakes.get('IPv4')!)).toBe(true), { timeout: 5000 });
    expect(runner.commands).toContain('tee /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established');
    const logged = logLines(lines.join('')).map((l) => ({
      msg: l.msg,
      severity: l.severity,
      event: l.fields['event'],
      note: String(l.fields['note']),
    }));
    expect(logged.filter((l) => l.severity === 'E').map((l) => l.msg)).toEqual([
      'conntrack setup: cannot set net.netfilter.nf_conntrack_max to 131072 (it is 0): Permission denied (read-only outside the host network namespace, or /proc/sys is mounted read-only); --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it',
    ]);
    expect(logged.find((l) => l.event === 'FailedConntrackSetup')?.note).toContain('nf_conntrack_max');
    // nodeRunner reads every sysctl as 0: br_netfilter's switch is off, said as upstream's iptables mode says it.
    expect(logged.map((l) => l.msg)).toContain(
      'Missing br-netfilter module or unset sysctl br-nf-call-iptables, proxy may not work as intended (pods on a Linux bridge need net.bridge.bridge-nf-call-iptables=1)',
    );
  });

  it('--detect-local-mode=NodeCIDR: says once that its Node has no podCIDR yet, serves, and detects local traffic once it has one', async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    const fakes = both();
    const ipv4 = fakes.get('IPv4')!;
    const node9 = (podCIDR?: string) => makeNode('node-9', { addresses: ['192.168.0.9'], ...(podCIDR ? { podCIDR } : {}) });
    const { agent: a, write } = await start('iptables', fakes, nodeRunner(), {
      logger,
      extra: [
        ['hostname-override', 'node-9'],
        ['detect-local-mode', 'NodeCIDR'],
      ],
      objects: [node9()],
    });
    await vi.waitFor(() => expect(converged(a, ipv4)).toBe(true), { timeout: 5000 });
    const said = () =>
      logLines(lines.join(''))
        .filter((l) => /podCIDR/.test(l.msg))
        .map((l) => `${l.severity} ${l.msg}`);
    const missing =
      'W --detect-local-mode=NodeCIDR: Node "node-9" has no podCIDR (yet): no local-traffic detection until it has one (upstream waits for it before it proxies)';
    await vi.waitFor(() => expect(said()).toEqual([missing]), { timeout: 5000 });
    const masq = () =>
      getChain(ipv4.snapshot(), 'nat', svcChain)?.rules.some((r) => r.includes('! -s 10.244.9.0/24') && r.includes('KUBE-MARK-MASQ'));
    expect(masq()).toBe(false);
    await new Promise((r) => setTimeout(r, 1000)); // periodic syncs: still said once
    expect(said()).toEqual([missing]);
    await write(['10.244.1.5'], [node9('10.244.9.0/24')]);
    await vi.waitFor(() => expect(masq()).toBe(true), { timeout: 5000 });
    expect(said()).toEqual([missing, 'I Node "node-9" has podCIDR 10.244.9.0/24: local traffic is detected by it from the next sync']);
  });

  it('says once that its Node is missing (a wrong --hostname-override), then that it was found, then that it was deleted', async () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 0, stream: { write: (l: string) => void lines.push(l) } });
    const fakes = both();
    const { write } = await start('iptables', fakes, nodeRunner(), { logger, extra: [['hostname-override', 'node-9']] });
    const said = () =>
      logLines(lines.join(''))
        .filter((l) => l.fields['node'] === 'node-9' && /Node/.test(l.msg))
        .map((l) => `${l.severity} ${l.msg}`);
    const missing = (how: string) =>
      `W no Node object named "node-9" ${how}: no node addresses, NodePorts match LOCAL addresses only; no zone, so topology hints are ignored (is --hostname-override right?)`;
    await vi.waitFor(() => expect(said()).toEqual([missing('among the Nodes')]), { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 1000)); // two periodic syncs: still said once
    expect(said()).toEqual([missing('among the Nodes')]);
    await write(['10.244.1.5'], [makeNode('node-9', { addresses: ['192.168.0.9'] })]);
    const found = 'I Node "node-9" found: its addresses, zone and pod CIDR apply from the next sync';
    await vi.waitFor(() => expect(said()).toEqual([missing('among the Nodes'), found]), { timeout: 5000 });
    await write(['10.244.1.5']);
    await vi.waitFor(() => expect(said()).toEqual([missing('among the Nodes'), found, missing('any more (deleted)')]), { timeout: 5000 });
  });

  it('deletes the nftables tables when it starts in iptables mode (upstream platformCleanup)', async () => {
    const nft = new FakeNft();
    await nft.run('add table ip kube-proxy\nadd chain ip kube-proxy services\nadd table ip6 kube-proxy\n');
    await start('iptables', both(), nodeRunner(), { nftables: node(nft) });
    expect(await nft.list('ip')).toBeNull();
    expect(await nft.list('ip6')).toBeNull();
  });

  it.each([
    [{ nftVersion: async () => 'nftables v1.0.0 (Fearless Fosdick #2)' }, 'kube-proxy in nftables mode requires nft 1.0.1 or later (found 1.0.0)'],
    [{ kernelRelease: () => '5.10.0-28-amd64' }, 'kube-proxy in nftables mode requires kernel 5.13 or later (found 5.10.0-28-amd64'],
    [
      {
        nftVersion: async () => {
          throw new Error('cannot start "nft": spawn nft ENOENT');
        },
      },
      '--mode=nftables needs the nft program (Debian package nftables): cannot start "nft"',
    ],
  ])('refuses a missing or old nft or an old kernel and touches no rule (upstream knftables.New, platformCheckSupported)', async (over, message) => {
    const fakes = both();
    await fakes.get('IPv4')!.restore(PORTALS, { noflush: true, counters: false });
    await expect(start('nftables', fakes, nodeRunner(), { nftables: node(new FakeNft(), over) })).rejects.toThrow(message);
    expect(getChain(fakes.get('IPv4')!.snapshot(), 'nat', 'KUBE-PORTALS-CONTAINER')).toBeDefined();
  });

  it('starts on an old kernel when KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK is set (upstream platformCheckSupported)', async () => {
    const nft = new FakeNft();
    const { agent: a } = await start('nftables', both(), nodeRunner(), {
      nftables: node(nft, { kernelRelease: () => '5.4.0', env: { KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK: '1' } }),
    });
    await vi.waitFor(async () => expect(await nftConverged(a, nft, 'IPv4')).toBe(true), { timeout: 5000 });
  });
});
