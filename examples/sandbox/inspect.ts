/**
 * What kube-proxy-ts left on a node, cut down to what a newcomer can read:
 * in iptables mode the nat rules of one service (comments left out, each
 * endpoint chain annotated with its pod) and `kube-proxy-ts diff`; in
 * nftables mode the map entries and chains of one service and `diff`; in
 * userspace mode the portal rules and the listening sockets they redirect to.
 */
import { Nft } from '../../nftables/nft.ts';
import { dnatMapRule } from '../../nftables/render-endpoints.ts';
import type { Cluster } from '../../test/netns/cluster.ts';
import { MAIN, agentArgs, natTable, type Agent } from './agents.ts';
import { nodeOfPod, NODES } from './objects.ts';
import type { Story } from './story.ts';

const COMMENT = / -m comment --comment (?:"[^"]*"|\S+)/g;

function podOfIP(ip: string): string | null {
  for (const n of NODES) for (const p of n.pods) if (p.ip === ip) return p.name;
  return null;
}

/**
 * The chain of rules a packet for `service` ("default/web") walks: the
 * KUBE-SERVICES / KUBE-NODEPORTS entries, the service chain with its
 * probabilities, and each endpoint's DNAT. Masquerade marks are left out.
 */
export function serviceRules(nat: string, service: string): string[] {
  const rules = nat.split('\n').filter((l) => l.startsWith('-A '));
  const about = (l: string): boolean => l.includes(`"${service}:`) || l.includes(` ${service}:`);
  // The service's own chains (some of their rules carry no comment), and its entries in the shared chains.
  const own = new Set(
    rules
      .filter(about)
      .map((l) => l.split(' ')[1]!)
      .filter((c) => /^KUBE-(SVC|EXT|SEP)-/.test(c)),
  );
  const mine = rules.filter((l) => own.has(l.split(' ')[1]!) || (/^-A KUBE-(SERVICES|NODEPORTS) /.test(l) && about(l)));
  const sepPod = new Map<string, string>();
  for (const l of mine) {
    const m = /^-A (KUBE-SEP-\S+) .*--to-destination ([\d.]+):\d+/.exec(l);
    const pod = m ? podOfIP(m[2]!) : null;
    if (m && pod) sepPod.set(m[1]!, pod);
  }
  const order = (l: string): number => (/^-A KUBE-(SERVICES|NODEPORTS) /.test(l) ? 0 : /^-A KUBE-(EXT|SVC)-/.test(l) ? 1 : 2);
  return mine
    .filter((l) => !/-j KUBE-MARK-MASQ$/.test(l))
    .filter((l) => !/^-A KUBE-SEP-/.test(l) || l.includes('DNAT'))
    .sort((a, b) => order(a) - order(b))
    .map((l) => {
      const text = l.replace(COMMENT, '');
      const sep = /-j (KUBE-SEP-\S+)$/.exec(l)?.[1] ?? /^-A (KUBE-SEP-\S+)/.exec(l)?.[1];
      const pod = sep ? sepPod.get(sep) : undefined;
      return pod ? `${text}   # ${pod} (${nodeOfPod(pod)})` : text;
    });
}

/** The userspace portal rules (from pods and other hosts), comments left out. */
export function portalRules(nat: string): string[] {
  return nat
    .split('\n')
    .filter((l) => /^-A KUBE-(PORTALS|NODEPORT)-CONTAINER /.test(l))
    .map((l) => l.replace(COMMENT, ''));
}

/** `ss -ltnup` in the node's namespace, one line per socket, each named by what it is for. */
export async function listeners(cluster: Cluster, agent: Agent, nat: string): Promise<string[]> {
  const r = await cluster.exec(agent.ns, 'ss', ['-H', '-ltnup'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ss in ${agent.ns}: ${r.stderr.trim()}`);
  const purpose = new Map<string, string>([
    ['10256', 'health server (/healthz)'],
    ['10249', 'metrics server (/metrics)'],
  ]);
  for (const l of portalRules(nat)) {
    const to = /--to-ports (\d+)/.exec(l)?.[1];
    const proto = /-p (tcp|udp)/.exec(l)?.[1] ?? '';
    const dport = /--dport (\d+)/.exec(l)?.[1] ?? '';
    const dst = /-d ([\d.]+)\/32/.exec(l)?.[1];
    if (to)
      purpose.set(
        to,
        `proxy for ${dst ? `${dst}:${dport}` : `node port ${dport}`}/${proto}${purpose.has(to) ? ` and ${purpose.get(to)!.replace(/^proxy for /, '')}` : ''}`,
      );
    if (!dst && dport) purpose.set(dport, `held open: node port ${dport}/${proto} is taken by the service`);
  }
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const cols = l.trim().split(/\s+/);
      const local = cols[4] ?? '';
      const port = local.slice(local.lastIndexOf(':') + 1);
      return `${(cols[0] ?? '').padEnd(4)} ${local.padEnd(16)} ${purpose.get(port) ?? ''}`;
    })
    .sort();
}

/** `kube-proxy-ts diff` inside the node's namespace: exit code and output lines. */
export async function diffNode(cluster: Cluster, agent: Agent, objectsDir: string): Promise<{ code: number; lines: string[] }> {
  const r = await cluster.exec(agent.ns, process.execPath, [MAIN, 'diff', ...agentArgs(agent.mode, objectsDir, agent.node)], {
    timeoutMs: 30_000,
  });
  const lines = `${r.stdout}${r.stderr}`
    .trim()
    .split('\n')
    .filter((l) => l !== '');
  return { code: r.code, lines: lines.length > 8 ? [...lines.slice(0, 8), `... (${lines.length - 8} more lines)`] : lines };
}

/** Step 4 in iptables mode: web's rules on the node, then `kube-proxy-ts diff`; returns problems. */
export async function showRules(story: Story, cluster: Cluster, agent: Agent, objectsDir: string): Promise<string[]> {
  const nat = await natTable(cluster, agent);
  const rules = serviceRules(nat, 'default/web');
  const all = nat.split('\n').filter((l) => l.startsWith('-A ')).length;
  story.command(`ip netns exec ${agent.ns} iptables-save -t nat    # web's rules, comments and masquerade marks left out`);
  story.output(rules);
  story.line(`(${all - rules.length} more nat rules: dns's, the masquerade marks, the jumps from PREROUTING and OUTPUT; and a filter table)`);
  story.line("A packet to 172.30.0.10:80 jumps to web's service chain, which picks an endpoint at random, then DNATs to the pod.");
  return showDiff(story, cluster, agent, objectsDir);
}

async function showDiff(story: Story, cluster: Cluster, agent: Agent, objectsDir: string): Promise<string[]> {
  const mode = agent.mode === 'nftables' ? ' --mode nftables' : '';
  story.command(`ip netns exec ${agent.ns} node src/main.ts diff${mode} --objects DIR --hostname-override ${agent.node} ...`);
  const diff = await diffNode(cluster, agent, objectsDir);
  story.output(diff.lines);
  if (diff.code === 0) {
    story.ok('the kernel holds exactly the rules kube-proxy-ts computes from the objects');
    return [];
  }
  story.warn(`diff exited ${diff.code}`);
  return [`diff on ${agent.node} exited ${diff.code}`];
}

/** Step 4 in userspace mode: the portal rules and the sockets they lead to. */
export async function showListeners(story: Story, cluster: Cluster, agent: Agent): Promise<void> {
  const nat = await natTable(cluster, agent);
  story.command(`ip netns exec ${agent.ns} iptables-save -t nat | grep -- '-CONTAINER '    # comments left out`);
  story.output(portalRules(nat));
  story.line('(KUBE-PORTALS-HOST and KUBE-NODEPORT-HOST do the same for traffic from the node itself, with DNAT to its address)');
  story.command(`ip netns exec ${agent.ns} ss -ltnup`);
  story.output(await listeners(cluster, agent, nat));
  story.line('A connection to 172.30.0.10:80 is redirected to the proxy port; kube-proxy-ts accepts it and dials a pod (round robin).');
}

/** A masquerade mark: generation A's `jump mark-for-masquerade`, B's (upstream v1.36+) inline mark, as listed (`meta mark set meta mark | 0x…`). */
const MASQUERADE_MARK = /(?:jump mark-for-masquerade|mark set (?:meta )?mark (?:or|\|) 0x[0-9a-f]+)(?: comment "[^"]*")?$/;

/**
 * web's part of the `ip kube-proxy` table: its map entries (ClusterIP,
 * NodePort) and its chains, endpoint chains annotated with their pod;
 * masquerade marks left out. `dnatMap`: with endpoint chains (here for
 * --traffic-counters), the rule web's service chain holds without them,
 * as upstream v1.36+ writes it: one DNAT through a numgen map.
 */
export async function nftServiceLines(
  cluster: Cluster,
  agent: Agent,
  service: string,
): Promise<{ lines: string[]; total: number; counting: boolean; dnatMap: string | null }> {
  const table = await new Nft(cluster.runnerIn(agent.ns)).list('ip');
  if (table === null) return { lines: [], total: 0, counting: false, dnatMap: null };
  const own = (name: string): boolean => name.includes(`-${service}/`);
  const lines: string[] = [];
  for (const set of table.sets)
    for (const e of set.elements ?? []) if (e.value !== null && own(e.value)) lines.push(`map ${set.name}: ${e.key} : ${e.value}`);
  const order = (n: string): number => (n.startsWith('external-') ? 0 : n.startsWith('service-') ? 1 : 2);
  const dnats = new Map<string, { ip: string; port: number; proto: string }>();
  for (const c of table.chains.filter((c) => own(c.name)).sort((a, b) => order(a.name) - order(b.name))) {
    for (const r of c.rules.filter((r) => !MASQUERADE_MARK.test(r))) {
      const dnat = /meta l4proto (\w+) .*dnat to ([\d.]+):(\d+)/.exec(r);
      if (dnat) dnats.set(c.name, { proto: dnat[1]!, ip: dnat[2]!, port: Number(dnat[3]) });
      const pod = dnat ? podOfIP(dnat[2]!) : null;
      // The counter (--traffic-counters) is named like the chain: left out here, said below.
      const shown = r.replace(`counter name "${c.name}" `, '');
      lines.push(`chain ${c.name}: ${shown}${pod ? `   # ${pod} (${nodeOfPod(pod)})` : ''}`);
    }
  }
  // The service chain's choice among the endpoint chains, in its order.
  const policy = table.chains
    .filter((c) => c.name.startsWith('service-') && own(c.name))
    .flatMap((c) => c.rules)
    .map((r) => /numgen random mod \d+ vmap \{ (.*) \}/.exec(r)?.[1])
    .find((m) => m !== undefined);
  const targets = policy?.split(/\s*,\s*/).map((e) => dnats.get(/goto (\S+)$/.exec(e)?.[1] ?? ''));
  const dnatMap = targets && targets.length > 0 && targets.every((t) => t !== undefined) ? dnatMapRule(targets, targets[0]!.proto, 'ip') : null;
  const total = table.chains.reduce((n, c) => n + c.rules.length, 0) + table.sets.reduce((n, s) => n + (s.elements?.length ?? 0), 0);
  return { lines, total, counting: (table.counters ?? []).length > 0, dnatMap };
}

/** Step 4 in nftables mode: web's map entries and chains, then `kube-proxy-ts diff --mode nftables`; returns problems. */
export async function showNftRules(story: Story, cluster: Cluster, agent: Agent, objectsDir: string): Promise<string[]> {
  const { lines, total, counting, dnatMap } = await nftServiceLines(cluster, agent, 'default/web');
  story.command(`ip netns exec ${agent.ns} nft list table ip kube-proxy    # web's map entries and chains, masquerade marks left out`);
  story.output(lines);
  story.line(
    `(${total - lines.length} more rules and map/set entries: dns's, the base chains, the no-endpoint and bad-port checks, the hairpin-connections of local pods)`,
  );
  story.line("A packet to 172.30.0.10:80 finds web's chain in the service-ips map (one lookup), which picks an endpoint with numgen, then DNATs.");
  if (counting) {
    story.line(
      'The endpoint chains are there for --traffic-counters: each one\'s DNAT rule also counts into a named counter of the chain\'s name (`counter name "endpoint-…"`, left out above).',
    );
    if (dnatMap !== null)
      story.line(`Without it (or session affinity) there are none, as upstream v1.36+ writes it: web's service chain DNATs itself, \`${dnatMap}\`.`);
  }
  return showDiff(story, cluster, agent, objectsDir);
}
