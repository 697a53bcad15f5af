/**
 * The sandbox step that shows what operators get beyond upstream: in
 * iptables and nftables modes `kube-proxy-ts top` on node-1 for a few
 * seconds while web gets requests, the agent's
 * kubeproxy_ts_endpoint_packets_total series (--traffic-counters: the
 * KUBE-SEP rules' counters, or each endpoint chain's named counter), and
 * /debug/services for web (in nftables mode each service port's chains and
 * map keys too); in userspace mode
 * /debug/services (each service port's listener). The pages are read from
 * inside the node's namespace, where the metrics server listens on
 * 127.0.0.1:10249, as `kubectl exec` into the agent's pod would.
 */
import type { Cluster } from '../../test/netns/cluster.ts';
import { MAIN, type Agent, type Mode } from './agents.ts';
import { WEB } from './objects.ts';
import { POD_TO_WEB, send } from './requests.ts';
import { WIDTH, type Story } from './story.ts';

const METRICS = 'http://127.0.0.1:10249';

/** A page of the agent's metrics server, fetched from inside its namespace. */
async function page(cluster: Cluster, agent: Agent, path: string): Promise<string> {
  const script = `fetch('${METRICS}${path}').then(async (r) => process.stdout.write(await r.text()))`;
  const r = await cluster.exec(agent.ns, process.execPath, ['-e', script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`GET ${path} in ${agent.ns}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The block of one service in /debug/services: its line and the indented lines under it. */
export function serviceBlock(text: string, service: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${service} `));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('  '));
  return lines.slice(start, end < 0 ? undefined : end);
}

/**
 * A /debug/services endpoint line as wide as the story shows (WIDTH): the padding before its packets and bytes
 * (--traffic-counters) closed up, then its objects cut short ("..."), so the figures stay in view. A local endpoint's
 * line in nftables mode is widest: its endpoint chain and its hairpin-connections element (generation B).
 */
export function keepTraffic(line: string, width = WIDTH): string {
  const traffic = / {2,}(\d+ pkts {2}\d+ bytes)$/.exec(line);
  if (line.length <= width || traffic === null) return line;
  const head = line.slice(0, traffic.index);
  const tail = `  ${traffic[1]!}`;
  return head.length + tail.length <= width ? head + tail : `${head.slice(0, width - tail.length - 3)}...${tail}`;
}

/** `kube-proxy-ts top` for `frames` seconds while requests flow to web; returns its last frame. */
async function topWhileTraffic(cluster: Cluster, agent: Agent, mode: Mode, frames: number, signal: AbortSignal): Promise<string[]> {
  let done = false;
  const top = cluster
    .exec(agent.ns, process.execPath, [MAIN, 'top', '--mode', mode, '--interval', '1s', '--iterations', String(frames)], { timeoutMs: 30_000 })
    .finally(() => (done = true));
  // Requests all along, 100 ms apart (a batch takes a few ms), until top is done.
  for (const until = Date.now() + 30_000; !done && !signal.aborted && Date.now() < until;) {
    await send(cluster, POD_TO_WEB, 5);
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = await top;
  if (r.code !== 0) throw new Error(`kube-proxy-ts top exited ${r.code}: ${r.stderr.trim()}`);
  // Not on a terminal, top prints frame after frame: the last one starts at its last header line.
  return r.stdout.slice(r.stdout.lastIndexOf('kube-proxy-ts top ')).trimEnd().split('\n');
}

export async function showObservability(story: Story, cluster: Cluster, agent: Agent, mode: Mode, signal: AbortSignal): Promise<string[]> {
  const found: string[] = [];
  const web = `default/${WEB.name}:http`;
  if (mode !== 'userspace') {
    story.line(
      `kube-proxy-ts top on ${agent.node} for 3 seconds while the toolbox pod keeps calling web (the last screen; on a terminal it redraws in place):`,
    );
    story.command(`ip netns exec ${agent.ns} node src/main.ts top --mode ${mode} --interval 1s`);
    const frame = await topWhileTraffic(cluster, agent, mode, 3, signal);
    story.output(frame);
    if (!frame.some((l) => l.startsWith(web))) found.push(`top on ${agent.node} did not show ${web}`);
    story.line(
      mode === 'iptables'
        ? 'The agent exports the same counters (--traffic-counters, read every 2 s here and at every full sync):'
        : "The agent exports the same counters (--traffic-counters: each endpoint chain's named counter, read every 2 s here):",
    );
    story.command(`ip netns exec ${agent.ns} curl -s ${METRICS}/metrics | grep 'kubeproxy_ts_endpoint_packets_total{service="${web}"'`);
    const series = (await page(cluster, agent, '/metrics'))
      .split('\n')
      .filter((l) => l.startsWith(`kubeproxy_ts_endpoint_packets_total{service="${web}"`));
    story.output(series);
    if (series.length === 0) found.push(`no kubeproxy_ts_endpoint_packets_total series for ${web} on ${agent.node}`);
  }
  story.command(`ip netns exec ${agent.ns} curl -s ${METRICS}/debug/services    # web's part`);
  const block = serviceBlock(await page(cluster, agent, '/debug/services'), web);
  story.output(block.map((l) => keepTraffic(l)));
  if (block.length === 0) found.push(`/debug/services on ${agent.node} does not list ${web}`);
  else if (mode === 'nftables' && !/^ {2}service-\S+-default\/web\/tcp\/http /.test(block[1] ?? ''))
    found.push(`/debug/services on ${agent.node} shows no service- chain for ${web}`);
  else if (block.some((l) => l.includes('(nothing programmed)'))) found.push(`/debug/services on ${agent.node} shows nothing programmed for ${web}`);
  story.line(
    `/debug/rules on the same server holds the ${mode === 'userspace' ? 'portal rules' : 'whole ruleset'} last applied and any input the kernel refused.`,
  );
  return found;
}
