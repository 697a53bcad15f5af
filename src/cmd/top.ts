/**
 * `kube-proxy-ts top`: live traffic per service endpoint on this node, from
 * the packet counters of the KUBE-SEP DNAT rules (`iptables-save -c -t nat`
 * every --interval, read-only). Runs where iptables-save runs: on the node or
 * with `kubectl exec` in the agent's pod (host network), with or without the
 * agent's --traffic-counters. With --mode nftables, the named counter of
 * each endpoint chain, which exist only while the agent runs with
 * --traffic-counters and which the agent zeroes as it reads them (`nft reset
 * counters`): only the agent knows their totals, so top asks it for a
 * reading at each frame (GET /debug/traffic on its metrics server,
 * --metrics-bind-address or the agent's --config; when the agent answers 429,
 * its page being read too often, top waits the Retry-After and asks again,
 * up to BUSY_TRIES times). On a terminal it redraws one screen in place;
 * otherwise (a pipe, a log) it prints one frame after another.
 * --iterations N stops after N frames.
 */
import { readEndpointCounters, type EndpointCounter } from '../../iptables/endpoint-counters.ts';
import { probeNode } from '../../iptables/node-probe.ts';
import type { Iptables } from '../../iptables/iptables.ts';
import type { IPFamily } from '../../proxier/types.ts';
import { TOP_FLAGS } from '../flag-table.ts';
import { epochMs } from '../../proxier/clock.ts';
import { realClock } from '../system/clock.ts';
import { createExecaRunner } from '../system/exec.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';
import { usage } from './render.ts';
import { formatFrame, IPTABLES_COUNTED, rates, type FrameOptions } from './top-view.ts';
import { nftFamily, TABLE_NAME } from '../../nftables/model.ts';
import { parseHostPort } from '../host-port.ts';
import { retryAfterSeconds } from '../retry-after.ts';
import { endpointFamily, type TrafficPage } from '../servers/debug.ts';
import type { Clock } from '../../proxier/clock.ts';

/** Home, the frame with each line cleared to its end, then the rest of the screen cleared. */
export const redraw = (lines: readonly string[]): string => `\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`;

export async function topCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, TOP_FLAGS, io);
  if (typeof loaded === 'number') return loaded;
  const { config, extra } = loaded;
  const intervalMs = (extra.get('interval') as number | undefined) ?? 2000;
  if (!(intervalMs >= 100)) return usage(io, `--interval must be at least 100ms`);
  const iterations = (extra.get('iterations') as number | undefined) ?? 0;
  const log = io.makeLogger(config);
  const runner = io.runner ?? createExecaRunner();
  const clock = io.clock ?? realClock;
  if (config.mode === 'nftables') {
    // Without --ip-family: the agent's primary family (the iptables path's "IPv4 when the node has it, else IPv6").
    const wanted = ((extra.get('ip-family') as string | undefined) || null) as IPFamily | null;
    const agent = agentTrafficUrl(config.metricsBindAddress, wanted);
    if (typeof agent !== 'string') {
      io.stderr(`error: ${agent.error}\n`);
      return 1;
    }
    const via = new URL(agent).host;
    const read = async (pause: Pause): Promise<Reading | 'stopped'> => {
      const page = await fetchTraffic(agent, pause);
      if (page === 'stopped') return page;
      const family = wanted ?? page.families[0] ?? 'IPv4';
      return {
        at: clock.now(),
        source: `${family} table ${nftFamily(family)} ${TABLE_NAME} via ${via}`,
        notes: (page.failures ?? [])
          .filter((f) => f.startsWith(`${family}:`))
          .map((f) => `the agent could not read the counters now (these are its last reading's): ${f.replaceAll('\n', ' ')}`),
        counters: page.endpoints
          .filter((t) => endpointFamily(t.endpoint) === family)
          .map((t) => ({ chain: `${t.service}\u0000${t.endpoint}`, ...t })),
      };
    };
    const counted = {
      by: "the endpoint chains' named counters",
      none: `(no endpoint counted by the agent: it counts only with --traffic-counters)`,
    };
    return frames(io, { read, counted, intervalMs, iterations, clock });
  }
  const probe = await probeNode({ runner, logger: log, backend: config.iptablesBackend });
  const wanted = (extra.get('ip-family') as string | undefined) || (probe.handles.has('IPv4') ? 'IPv4' : 'IPv6');
  const ipt: Iptables | undefined = probe.handles.get(wanted as IPFamily);
  if (!ipt) {
    io.stderr(`error: no working ${wanted === 'IPv4' ? 'iptables' : 'ip6tables'} (${probe.backend} backend) on this node\n`);
    return 1;
  }
  const read = async (): Promise<Reading> => ({
    at: clock.now(),
    source: `${wanted} nat, ${probe.backend}`,
    counters: readEndpointCounters(await ipt.save(['nat'], { counters: true })),
  });
  return frames(io, { read, counted: IPTABLES_COUNTED, intervalMs, iterations, clock });
}

/** The agent's /debug/traffic for a family, from its --metrics-bind-address (a wildcard host is reached on loopback). */
export function agentTrafficUrl(bindAddress: string, family: IPFamily | null): string | { error: string } {
  const why = 'top --mode nftables reads the counters through the agent (GET /debug/traffic on its metrics server)';
  if (!bindAddress) return { error: `--metrics-bind-address is empty, so the agent serves no metrics: ${why}` };
  const hp = parseHostPort(bindAddress);
  if (!hp || hp.port === 0) return { error: `--metrics-bind-address ${bindAddress} names no port to reach: ${why}; give the agent's address` };
  const host = hp.host === '0.0.0.0' ? '127.0.0.1' : hp.host === '::' ? '::1' : hp.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${hp.port}/debug/traffic?format=json${family ? `&family=${family}` : ''}`;
}

/** Waits `ms` on top's clock: true, or false when the user stopped top meanwhile. */
type Pause = (ms: number) => Promise<boolean>;

/**
 * How many times top asks again when the agent answers 429 (its /debug/traffic token bucket is empty: another top, a
 * curl loop), each time after the Retry-After it names (at most BUSY_WAIT_MAX_S), before it gives up with the answer.
 */
export const BUSY_TRIES = 5;
const BUSY_WAIT_MAX_S = 10;

async function fetchTraffic(url: string, pause: Pause): Promise<TrafficPage | 'stopped'> {
  const at = new URL(url).host;
  for (let tries = 1; ; tries++) {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new Error(
        `cannot reach the agent's metrics server at ${at}: ${cause} (top --mode nftables reads the counters through the agent: give its --metrics-bind-address or --config)`,
      );
    }
    const body = await res.text();
    if (res.status === 429 && tries < BUSY_TRIES) {
      // Whole seconds as the agent sends them (an HTTP date or nothing: 1 s), never past BUSY_WAIT_MAX_S.
      const seconds = Math.min(retryAfterSeconds(res.headers.get('retry-after')) ?? 1, BUSY_WAIT_MAX_S);
      if (!(await pause(seconds * 1000))) return 'stopped';
      continue;
    }
    if (res.status !== 200) {
      const busy = res.status === 429 ? ` (${tries} times in a row, each time after the wait it asked for)` : '';
      // The agent's own answers are one line; anything else (an HTML page of another server) is cut.
      const notOurs = res.status === 404 ? `; is --metrics-bind-address the agent's?` : '';
      throw new Error(`the agent at ${at} answered /debug/traffic with ${res.status}${busy}: ${excerpt(body, 300)}${notOurs}`);
    }
    return checkedPage(at, body);
  }
}

/** The start of an answer on one line: its whitespace runs as one space, cut after `max` characters with "...". */
const excerpt = (body: string, max: number): string => {
  const line = body.trim().replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max)}...` : line;
};

function checkedPage(at: string, body: string): TrafficPage {
  let page: TrafficPage;
  try {
    page = JSON.parse(body) as TrafficPage;
    if (typeof page !== 'object' || page === null || !Array.isArray(page.endpoints)) throw new Error('no "endpoints" list');
  } catch (err) {
    throw new Error(
      `the agent at ${at} answered /debug/traffic with something other than its JSON page (${(err as Error).message}): "${excerpt(body, 60)}"; is --metrics-bind-address the agent's?`,
    );
  }
  if (page.mode !== 'nftables') throw new Error(`the agent at ${at} runs in ${page.mode} mode, not nftables: run top --mode ${page.mode}`);
  return page;
}

interface Reading {
  readonly at: number;
  /** What was read (the header's: the nftables family follows the agent's page). */
  readonly source: string;
  /** What it could not read, shown under the header. */
  readonly notes?: readonly string[];
  readonly counters: readonly EndpointCounter[];
}

interface FrameLoop {
  /** A reading; 'stopped' when the user stopped top while it waited (an agent's Retry-After). */
  readonly read: (pause: Pause) => Promise<Reading | 'stopped'>;
  readonly counted: FrameOptions['counted'];
  readonly intervalMs: number;
  readonly iterations: number;
  readonly clock: Clock;
}

/** Reads, then every interval reads again and shows the rates between the two readings, until stopped. */
async function frames(io: CommandIO, o: FrameLoop): Promise<number> {
  const { read, intervalMs, iterations, clock } = o;
  const terminal = io.terminal ?? null;
  // One wait at a time, cut short by a stop: its timer cleared, and no reaction left on the stop signal per frame (top
  // may run for days at --interval 100ms).
  let isStopped = false;
  let cutShort: (() => void) | null = null;
  void io.stopSignal?.().then(() => {
    isStopped = true;
    cutShort?.();
  });
  const pause: Pause = (ms) =>
    isStopped
      ? Promise.resolve(false)
      : new Promise<boolean>((resolve) => {
          const timer = clock.setTimeout(() => {
            cutShort = null;
            resolve(true);
          }, ms);
          cutShort = () => {
            clock.clearTimeout(timer);
            cutShort = null;
            resolve(false);
          };
        });
  /** A reading; null once it has said why there is none; 'stopped' when the user stopped top meanwhile. */
  const attempt = async (): Promise<Reading | 'stopped' | null> => {
    try {
      return await read(pause);
    } catch (err) {
      io.stderr(`error: ${(err as Error).message}\n`);
      return null;
    }
  };
  let previous = await attempt();
  if (previous === 'stopped') return 0;
  if (!previous) return 1;

  if (terminal) io.stdout('\x1b[2J');
  for (let frame = 1; iterations === 0 || frame <= iterations; frame++) {
    if (!(await pause(intervalMs))) break;
    const current = await attempt();
    if (current === 'stopped') break;
    if (!current) return 1;
    const lines = formatFrame(rates(previous.counters, current.counters, (current.at - previous.at) / 1000), {
      source: current.source,
      ...(current.notes?.length ? { notes: current.notes } : {}),
      ...(o.counted ? { counted: o.counted } : {}),
      intervalSeconds: intervalMs / 1000,
      at: new Date(epochMs(clock, current.at)),
      columns: terminal?.columns ?? 120,
      rows: terminal?.rows ?? 10_000,
    });
    io.stdout(terminal ? redraw(lines) : `${lines.join('\n')}\n\n`);
    previous = current;
  }
  return 0;
}
