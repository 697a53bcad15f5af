/**
 * What the property tests check about one generated cluster (see
 * cluster-arbitrary.ts), shared by the in-memory runs (fuzz-clusters.test.ts,
 * fuzz-nft.test.ts) and the kernel runs (fuzz-clusters.e2e.test.ts,
 * fuzz-nft.e2e.test.ts), in iptables and in nftables mode:
 *
 * - `kube-proxy-ts render` (the real command, objects read from a file, logs
 *   captured) exits 0 and prints one restore document per family;
 * - every object a fault makes skip (wholly or in part) is named in a
 *   `skipped: ...` log line, and nothing is logged as an error;
 * - whatever holds the rules afterwards (the fake or the kernel) diffs
 *   converged against the document;
 * - a packet from the outside client to each port of each Service that must
 *   be programmed (valid, tolerated, partial) reaches only that Service's
 *   endpoints, or is rejected/dropped: traced over the rules as iptables-save
 *   (or `nft -j list`) printed them back.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { diffRulesets, formatDiff } from '../iptables/diff.ts';
import { RestoreError, type Iptables } from '../iptables/iptables.ts';
import { IptablesMode } from '../iptables/iptables-mode.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { ApplyError } from '../proxier/mode.ts';
import type { Ruleset } from '../iptables/ruleset.ts';
import { trace } from '../iptables/trace.ts';
import { diffTables, isEmptyDiff, type SetDiff, type TableDiff } from '../nftables/diff.ts';
import { elementOfId } from '../nftables/sync-state.ts';
import type { NftTable } from '../nftables/model.ts';
import { NftError } from '../nftables/errors.ts';
import { NftablesMode, type NftTables } from '../nftables/nftables-mode.ts';
import { tableOf } from '../nftables/render.ts';
import { ManualClock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import type { Snapshot } from '../proxier/types.ts';
import { configFromFlags } from '../src/config.ts';
import { detectLocalFrom, renderOptionsFrom, snapshotsFromObjects } from '../src/desired.ts';
import { nftRenderOptionsFrom } from '../src/desired-nft.ts';
import { AGENT_FLAGS } from '../src/flag-table.ts';
import { parseFlags } from '../src/flags.ts';
import { parseObjects } from '../src/sources/parse-objects.ts';
import { traceNft } from '../nftables/trace.ts';
import type { TracePacket, TraceResult } from '../proxier/trace-result.ts';
import { renderCommand } from '../src/cmd/render.ts';
import { createLogger } from '../src/log.ts';
import { listenerRoles } from '../userspace/listener-roles.ts';
import type { PortHolder } from '../userspace/port-holder.ts';
import { RoundRobinBalancer } from '../userspace/round-robin.ts';
import { UserspaceMode } from '../userspace/userspace-mode.ts';
import { endpointString } from '../proxier/types.ts';
import fc from 'fast-check';
import { clusterArbitrary, clusterPairArbitrary, FUZZ_NODE, FUZZ_POD_PORT, FUZZ_PODS, type GenCluster } from './cluster-arbitrary.ts';
import { FLOW_NODES } from './flow-cases.case.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { request } from './netns/traffic.ts';
import { logLines, type LogLine } from './log-lines.ts';

type Family = 'IPv4' | 'IPv6';
export const FUZZ_CLIENT: Record<Family, string> = { IPv4: '192.168.50.200', IPv6: 'fd00:192:168:50::200' };

export interface Rendered {
  /** Restore documents (or `nft -f` transactions) by family, as `render` printed them. */
  readonly docs: ReadonlyMap<Family, string>;
  readonly logs: readonly LogLine[];
}

/** fast-check reporter: a failure as its message, seed and path, without the (huge) counterexample. */
export function shortReporter(details: {
  failed: boolean;
  seed: number;
  counterexamplePath: string | null;
  errorInstance?: unknown;
  numRuns: number;
}): void {
  if (!details.failed) return;
  const message = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    `property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}):\n${message.slice(0, 20_000)}`,
  );
}

/** Runs `kube-proxy-ts render` on the cluster's objects (written to `dir`), capturing stdout and the log. */
export async function renderCluster(c: GenCluster, dir: string, o: { mode?: 'nftables'; more?: readonly unknown[] } = {}): Promise<Rendered> {
  const file = join(dir, 'cluster.json');
  await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...c.objects, ...(o.more ?? [])] }));
  const out: string[] = [];
  const err: string[] = [];
  const logText: string[] = [];
  const code = await renderCommand(
    [
      ...(o.mode ? [`--mode=${o.mode}`] : []),
      '--objects',
      file,
      '--hostname-override',
      FUZZ_NODE.name,
      '--cluster-cidr',
      '10.244.0.0/16,fd00:10:244::/48',
      ...c.flags,
    ],
    {
      stdout: (t) => void out.push(t),
      stderr: (t) => void err.push(t),
      makeLogger: ({ verbosity }) => createLogger({ verbosity, stream: { write: (s: string) => void logText.push(s) } }),
      osHostname: () => FUZZ_NODE.name,
    },
  );
  if (code !== 0) throw new Error(`render exited ${code}: ${err.join('')}`);
  const docs = new Map<Family, string>();
  for (const part of out.join('').split(/^(?=# kube-proxy-ts )/m)) {
    const family = /^# kube-proxy-ts (IPv4|IPv6) /.exec(part)?.[1] as Family | undefined;
    if (family) docs.set(family, part);
  }
  const logs = logLines(logText.join(''));
  return { docs, logs };
}

/** Failures of the log property: every object a fault drops is named, nothing is an error. */
export function logFailures(c: GenCluster, logs: readonly LogLine[]): string[] {
  const failures: string[] = [];
  const skipped = logs.filter((l) => l.msg.startsWith('skipped: ')).map((l) => l.msg.slice('skipped: '.length));
  const named = (object: string): boolean => skipped.some((m) => m.includes(`${object}: `));
  for (const s of c.services) {
    if ((s.outcome === 'skipped' || s.outcome === 'partial') && !named(s.object))
      failures.push(`${JSON.stringify(s.object)} (${s.fault}) is named in no log line`);
  }
  for (const o of c.loggedObjects) if (!named(o)) failures.push(`${JSON.stringify(o)} is named in no log line`);
  for (const l of logs) if (l.severity === 'E' || l.severity === 'F') failures.push(`error logged: ${l.msg}`);
  return failures;
}

/** The rules as iptables-save printed them back diff converged against the rendered document. */
export function convergenceFailures(doc: string, family: Family, saved: string): string[] {
  const d = diffRulesets(parseSave(doc, family), parseSave(saved, family));
  return d.identical ? [] : [`not converged:\n${formatDiff(d).slice(0, 3000)}`];
}

export interface TraceCheck {
  readonly service: string;
  readonly family: Family;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  readonly ip: string;
  readonly port: number;
  /** "ip:port" of every endpoint reached; empty when rejected or dropped. */
  readonly reached: readonly string[];
  readonly verdict: string;
}

/** Runs one packet through the live rules of one family. */
export type Tracer = (packet: TracePacket) => TraceResult<unknown>;

/** The iptables tracer over the rules iptables-save printed back. */
export const iptablesTracer =
  (live: Ruleset): Tracer =>
  (packet) =>
    trace(live, packet, { localAddresses: [FUZZ_NODE.ip, FUZZ_NODE.ip6] });

/** The nftables tracer over the table `nft -j list` (or the fake) printed back. */
export const nftTracer =
  (live: NftTable): Tracer =>
  (packet) =>
    traceNft(live, packet, { localAddresses: [FUZZ_NODE.ip, FUZZ_NODE.ip6] });

/**
 * The ServiceCIDRs an nftables run adds to a cluster: the "kubernetes" one holding every ClusterIP the generator
 * writes, and, for two clusters in three, a second that touches it (the kernel merges them into 172.30.0.0/15) or
 * overlaps it. Addresses of them that no Service holds are dropped.
 */
export function fuzzServiceCIDRs(c: GenCluster): { objects: unknown[]; unallocated: Record<Family, string> } {
  const kubernetes = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    metadata: { name: 'kubernetes' },
    spec: { cidrs: ['172.30.0.0/16', 'fd00:172:30::/112'] },
  };
  const second = [['172.31.0.0/16', 'fd00:172:30::1:0/112'], ['172.30.0.0/20', 'fd00:172:30::/120'], null][c.services.length % 3];
  const objects: unknown[] = [kubernetes];
  if (second) objects.push({ apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'second' }, spec: { cidrs: second } });
  return { objects, unallocated: { IPv4: '172.30.255.254', IPv6: 'fd00:172:30::ffff' } };
}

/** A packet to an address of the ServiceCIDRs that no Service holds: dropped (nftables mode). */
export function unallocatedFailures(family: Family, address: string, tracer: Tracer): string[] {
  const r = tracer({ src: FUZZ_CLIENT[family], dst: address, protocol: 'TCP', dport: 80, origin: 'external', inInterface: 'eth0' });
  return r.verdict === 'DROP' && r.endpoints.length === 0 ? [] : [`unallocated ${address}: ${String(r.verdict)}, not DROP`];
}

/** Traces a packet to every port of every Service that must be programmed; failures and what each reached. */
export function traceFailures(c: GenCluster, family: Family, tracer: Tracer): { failures: string[]; checks: TraceCheck[] } {
  const failures: string[] = [];
  const checks: TraceCheck[] = [];
  for (const s of c.services) {
    const ip = s.clusterIPs[family];
    if (!ip) continue;
    for (const p of s.ports) {
      const r = tracer({ src: FUZZ_CLIENT[family], dst: ip, protocol: p.protocol, dport: p.port, origin: 'external', inInterface: 'eth0' });
      const what = `${s.object} ${p.protocol} ${family === 'IPv6' ? `[${ip}]` : ip}:${p.port} (${s.fault ?? 'valid'})`;
      for (const b of r.branches) {
        if (b.dnat) {
          if (!s.endpointIPs.has(b.dnat.ip) || !s.endpointPorts.has(b.dnat.port))
            failures.push(`${what} reaches ${b.dnat.ip}:${b.dnat.port}, not one of its endpoints`);
        } else if (b.verdict !== 'REJECT' && b.verdict !== 'DROP') {
          failures.push(`${what} is not programmed: ${b.verdict} by ${b.end}`);
        }
      }
      checks.push({ service: s.object, family, protocol: p.protocol, ip, port: p.port, reached: r.endpoints, verdict: String(r.verdict) });
    }
  }
  return { failures, checks };
}

/** Throws when a cluster's property failed, naming its faults and flags (the counterexample itself is too large). */
export function throwIfFailed(c: GenCluster, failures: readonly string[]): void {
  if (failures.length)
    throw new Error(`faults ${JSON.stringify(c.faults)} flags ${JSON.stringify(c.flags)}:\n${failures.map((f) => f.slice(0, 600)).join('\n')}`);
}

/** What a kernel run counts over its clusters. */
export interface KernelRunStats {
  clusters: number;
  traced: number;
  reached: number;
  realPackets: number;
}

/**
 * The end of one cluster in a kernel run: for every fourth cluster a real TCP request from the outside client to a
 * Service whose endpoints are pods, which must agree with the trace; then the counts, and the failures thrown.
 */
export async function finishKernelCluster(
  cluster: Cluster,
  c: GenCluster,
  checks: readonly TraceCheck[],
  failures: string[],
  stats: KernelRunStats,
): Promise<void> {
  if (stats.clusters % 4 === 0) {
    const real = await realPacket(cluster, c, checks);
    stats.realPackets += real.length;
    failures.push(...real.filter((x) => x !== 'ok'));
  }
  stats.clusters++;
  stats.traced += checks.length;
  stats.reached += checks.filter((x) => x.reached.length > 0).length;
  throwIfFailed(c, failures);
}

/** A real TCP request to one traced Service port whose endpoints are all pods: it must do what the trace says. */
async function realPacket(cluster: Cluster, c: GenCluster, checks: readonly TraceCheck[]): Promise<string[]> {
  const podIPs = new Set<string>(Object.values(FUZZ_PODS).map((p) => p.ip));
  const check = checks.find((t) => {
    const s = c.services.find((x) => x.object === t.service);
    return (
      t.family === 'IPv4' &&
      t.protocol === 'TCP' &&
      s?.podsOnly &&
      (t.reached.length > 0 ? t.reached.every((e) => podIPs.has(e.split(':')[0]!)) : t.verdict === 'REJECT')
    );
  });
  if (!check) return [];
  await cluster.exec(cluster.node('node-1').ns, 'conntrack', ['-F']).catch(() => undefined);
  const [r] = await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: check.ip, port: check.port, count: 1, timeoutMs: 1500 });
  const what = `real request to ${check.service} ${check.ip}:${check.port}`;
  if (check.reached.length === 0) return r!.ok || r!.error !== 'refused' ? [`${what}: traced REJECT, got ${JSON.stringify(r)}`] : ['ok'];
  if (!r!.ok) return [`${what}: traced to ${check.reached.join(', ')}, got ${r!.error}`];
  const ip = FUZZ_PODS[r!.pod as keyof typeof FUZZ_PODS]?.ip;
  return ip && check.reached.includes(`${ip}:${FUZZ_POD_PORT}`) ? ['ok'] : [`${what}: answered by ${r!.pod}, traced to ${check.reached.join(', ')}`];
}

/**
 * Registers beforeAll/afterAll for a kernel run: the namespace cluster (startFuzzCluster) and a temporary directory
 * for the objects files, both removed afterwards.
 */
/** A directory for the objects files a property's render writes, made before its tests and removed after. */
export function useFuzzDir(prefix: string): { readonly dir: string } {
  let dir: string | null = null;
  beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), `${prefix}-`))));
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir(): string {
      if (!dir) throw new Error('fuzz: no directory (outside a test?)');
      return dir;
    },
  };
}

export function useFuzzCluster(prefix: string): { readonly cluster: Cluster; readonly dir: string } {
  let cluster: Cluster | null = null;
  let servers: PodServers | null = null;
  const files = useFuzzDir(prefix);
  beforeAll(async () => void ({ cluster, servers } = await startFuzzCluster(prefix)));
  afterAll(async () => {
    await servers?.stop();
    await cluster?.destroy();
  });
  return {
    get cluster(): Cluster {
      if (!cluster) throw new Error('fuzz cluster: not started (outside a test?)');
      return cluster;
    },
    get dir(): string {
      return files.dir;
    },
  };
}

/** The namespace cluster the kernel runs load into: node-1 (pods a, b) and node-2 (pod c), an outside client, both families. */
async function startFuzzCluster(prefix: string): Promise<{ cluster: Cluster; servers: PodServers }> {
  const cluster = await createCluster({
    prefix,
    client: true,
    ipv6: true,
    nodes: FLOW_NODES,
  });
  return { cluster, servers: await cluster.startPodServers({ tcp: [FUZZ_POD_PORT] }) };
}

/**
 * Sequences for the modes' sequence properties: two clusters taken in turn (a, b, a, b, a), so that the same service
 * ports come back with other endpoints, policies or affinity, the chains of one state meet the table of the other,
 * and restarts find chains whose names match but whose services changed. Half are two random clusters (services
 * mostly come and go), half a cluster and the same after some events (clusterPairArbitrary: services mostly change in
 * place).
 */
export const sequenceArbitrary: fc.Arbitrary<GenCluster[]> = fc
  .oneof(fc.tuple(clusterArbitrary, clusterArbitrary), clusterPairArbitrary)
  .map(([a, b]) => [a, b, a, b, a]);

/** A failure injected into a sequence: the `restore`-th restore (0-based) of sync `step` fails, applying nothing. */
export interface InjectedFailure {
  readonly step: number;
  readonly restore: number;
}

/** A sequence for a mode's sequence property: its clusters, and at most one write of the kernel that fails. */
export interface ModeSequence {
  readonly clusters: readonly GenCluster[];
  readonly fail: InjectedFailure | null;
}

export interface IptablesSequence extends ModeSequence {
  /** Per-service chains per restore (the nft backend's split syncs): 0 = one restore per sync. */
  readonly batchChains: number;
}

const injectedFailureArbitrary = fc.option(fc.record({ step: fc.integer({ min: 0, max: 4 }), restore: fc.integer({ min: 0, max: 2 }) }), { freq: 2 });

/** sequenceArbitrary for the nftables mode, some with a transaction (or a deletion) that fails. */
export const nftSequenceArbitrary: fc.Arbitrary<ModeSequence> = fc.record({ clusters: sequenceArbitrary, fail: injectedFailureArbitrary });

/** sequenceArbitrary for the iptables mode, with and without split restores, some with a restore that fails. */
export const iptablesSequenceArbitrary: fc.Arbitrary<IptablesSequence> = fc.record({
  clusters: sequenceArbitrary,
  batchChains: fc.constantFrom(0, 0, 2, 7),
  fail: injectedFailureArbitrary,
});

/**
 * An nft whose transactions fail when `failing()` says so (before running: nothing of it is applied, as when the
 * kernel refuses a transaction). Everything else passes through.
 */
function failingNft(nft: NftTables, failing: () => boolean): NftTables {
  return {
    run: async (text) => {
      if (failing())
        throw new NftError({ what: 'nft -f', kind: 'other', line: null, lineText: null, stderr: 'Error: injected failure', exitCode: 1 });
      return nft.run(text);
    },
    check: (text) => nft.check(text),
    list: (family) => nft.list(family),
    listNames: (family, options) => nft.listNames(family, options),
    deleteTable: (family) => nft.deleteTable(family),
    counters: (family, options) => nft.counters(family, options),
  };
}

/** The one write of the kernel a sequence refuses (ModeSequence.fail), and how many were refused. */
class Injector {
  injected = 0;
  private readonly fail: InjectedFailure | null;
  private at = -1;
  private writes = 0;
  constructor(fail: InjectedFailure | null) {
    this.fail = fail;
  }
  /** The writes from now on are those of sync `step`. */
  arm(step: number): void {
    this.at = step;
    this.writes = 0;
  }
  disarm(): void {
    this.at = -1;
  }
  /** Whether this write fails. */
  failing(): boolean {
    return this.at === this.fail?.step && this.writes++ === this.fail.restore;
  }
}

/**
 * A sync as the runner makes it: once, and once more when the injected failure refused it; the retry must be full
 * (and repair whatever the refused sync left). Returns whether the sync that succeeded was full, or null (a failure
 * pushed) when one was refused otherwise.
 */
async function syncRetried(name: string, once: () => Promise<boolean>, inj: Injector, failures: string[]): Promise<boolean | null> {
  try {
    return await once();
  } catch (err) {
    if (!(err instanceof ApplyError) || !/injected failure/.test(err.message)) {
      failures.push(`${name} refused: ${(err as Error).message.slice(0, 800)}`);
      return null;
    }
  }
  inj.injected++;
  inj.disarm();
  try {
    const full = await once();
    if (!full) failures.push(`${name}: the retry after an injected failure was not a full sync`);
    return full;
  } catch (err) {
    failures.push(`${name}, retried after an injected failure, refused: ${(err as Error).message.slice(0, 800)}`);
    return null;
  }
}

/** The agent's settings on the fuzz node (node-1, the pods' cluster CIDRs), with these flags. */
export const fuzzConfig = (flags: readonly string[]) =>
  configFromFlags(
    parseFlags([`--hostname-override=${FUZZ_NODE.name}`, '--cluster-cidr=10.244.0.0/16,fd00:10:244::/48', ...flags], AGENT_FLAGS).values,
  );

/** The node's settings for a sequence: the first cluster's flags throughout (changing them is a restart, not a sync). */
const sequenceConfig = (clusters: readonly GenCluster[], mode: readonly string[] = []) => fuzzConfig([...mode, ...clusters[0]!.flags]);

/** One family's snapshot of a cluster, as the objects file would give it. */
function sequenceSnapshot(c: GenCluster, config: ReturnType<typeof fuzzConfig>, family: Family, more: readonly unknown[] = []): Snapshot {
  const objects = parseObjects(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...c.objects, ...more] }), 'fuzz');
  return snapshotsFromObjects(objects, config, { families: [family] }).snapshots[0]!;
}

/**
 * The nftables mode itself (NftablesMode, as the agent runs it) over a sequence of clusters, one after the other as
 * events would bring them, both families: a full sync of the first, then partial syncs, with upstream's 1 s
 * stale-chain delay on the mode's clock and its deletions beside the syncs; and every second cluster arrives after a
 * restart (a new mode's full sync over the table the old one left, its flushed stale chains included: where upstream's
 * epChainSkipUpdate kept them empty); and optionally one transaction or deletion that the kernel refuses (the sync is
 * retried, as the runner does). After every sync the table must hold exactly the render but for stale chains flushed
 * and not yet deleted (each empty) and generation B's hairpin-connections elements pending deletion (exactly those the
 * mode holds for its cleanup: setsBeyondPending); one more sync 11 s later must leave exactly the render.
 */
export async function nftSequenceFailures(nftOf: NftTables, seq: ModeSequence): Promise<{ failures: string[]; injected: number }> {
  const failures: string[] = [];
  const inj = new Injector(seq.fail);
  const clusters = seq.clusters;
  const config = sequenceConfig(clusters, ['--mode=nftables']);
  for (const family of ['IPv4', 'IPv6'] as const) {
    const fam = family === 'IPv4' ? 'ip' : 'ip6';
    const clock = new ManualClock(1_000_000);
    const nft = failingNft(nftOf, () => inj.failing());
    // --traffic-counters on or off, switched at every restart: a start with it makes a counter per endpoint chain, a
    // start without it deletes what the one before made.
    let counting = clusters.length % 2 === 0;
    const start = () =>
      new NftablesMode(
        { families: [family], render: { ...nftRenderOptionsFrom(config), trafficCounters: counting } },
        { nft, clock, logger: silentLogger() },
      );
    let mode = start();
    const sync = async (step: string, snapshot: Snapshot): Promise<{ full: boolean; live: NftTable | null } | null> => {
      const once = async (): Promise<boolean> => {
        const full = (await mode.sync(snapshot, { periodic: false, previous: null })).full;
        await mode.deletionsDone();
        return full;
      };
      const full = await syncRetried(`${family} ${step}`, once, inj, failures);
      inj.disarm();
      return full === null ? null : { full, live: await nftOf.list(fam) };
    };
    let last: Snapshot | null = null;
    for (const [i, c] of clusters.entries()) {
      const snapshot = sequenceSnapshot(c, config, family, fuzzServiceCIDRs(c).objects);
      const restart = i > 0 && i % 2 === 0;
      if (restart) {
        await mode.close();
        counting = !counting;
        mode = start();
      }
      clock.advance(400 + (i % 3) * 700);
      const step = `sync ${i}${restart ? ' after a restart' : ''}`;
      inj.arm(i);
      const r = await sync(step, snapshot);
      if (r === null) return { failures, injected: inj.injected };
      const d = diffTables(tableOf(mode.lastRender(family)!), r.live);
      const withRules = d.extraChains.filter((name) => r.live!.chains.find((x) => x.name === name)?.rules.length !== 0);
      // A flushed stale chain keeps its counter until both are deleted.
      const flushed = new Set(d.extraChains.filter((name) => !withRules.includes(name)));
      const sets = setsBeyondPending(d.sets, mode.lastPlan(family)!.next.staleElements);
      const shown = { ...d, extraChains: withRules, extraCounters: d.extraCounters.filter((name) => !flushed.has(name)), sets };
      if (!isEmptyDiff(shown))
        failures.push(
          `${family} after ${step} (${r.full ? 'full' : 'partial'}, ${snapshot.services.length} service ports, counters ${counting ? 'on' : 'off'}): ${diffSummary(shown)}`,
        );
      last = snapshot;
    }
    clock.advance(11_000);
    const r = await sync('the last sync', last!);
    if (r === null) return { failures, injected: inj.injected };
    const d = diffTables(tableOf(mode.lastRender(family)!), r.live);
    if (!isEmptyDiff(d)) failures.push(`${family} after the last stale chains were due: ${diffSummary(d)}`);
    await mode.close();
  }
  return { failures, injected: inj.injected };
}

/**
 * The set differences left once the elements the mode holds for its stale cleanup are accounted for: generation B
 * deletes a hairpin-connections element nothing wants with the stale chains, not in the event's transaction
 * (sync-state.ts DEFERRED_ELEMENT_SETS). Between syncs the kernel must hold exactly the render's elements plus those
 * pending (staleElements): an extra element the mode does not know of would never be deleted, a pending one the kernel
 * lacks would make the cleanup's `delete element` fail. Anything else (missing, changed, a declaration) stays.
 */
export function setsBeyondPending(sets: readonly SetDiff[], pending: ReadonlyMap<string, number>): SetDiff[] {
  const bySet = new Map<string, string[]>();
  for (const id of pending.keys()) {
    const [set, key] = elementOfId(id);
    bySet.set(set, [...(bySet.get(set) ?? []), key]);
  }
  const out: SetDiff[] = [];
  for (const s of sets) {
    const want = new Set(bySet.get(s.set) ?? []);
    bySet.delete(s.set);
    const extra = s.extra.filter((e) => !want.has(e.key));
    const gone = [...want].filter((k) => !s.extra.some((e) => e.key === k));
    const missing = [...s.missing, ...gone.map((key) => ({ key, value: null, comment: 'pending deletion, not in the kernel' }))];
    if (s.declaration || missing.length + extra.length + s.changed.length > 0) out.push({ ...s, missing, extra });
  }
  // Pending elements of a set without any other difference: the kernel does not hold them.
  for (const [set, keys] of bySet)
    out.push({
      set,
      declaration: null,
      missing: keys.map((key) => ({ key, value: null, comment: 'pending deletion, not in the kernel' })),
      extra: [],
      changed: [],
    });
  return out;
}

/**
 * An Iptables whose restores fail when `failing()` says so (before running: nothing of that restore is applied, as
 * when iptables-restore rejects its input). Saves pass through.
 */
function failingIptables(ipt: Iptables, failing: () => boolean): Iptables {
  return {
    family: ipt.family,
    restore: async (text, opts) => {
      if (failing()) throw new RestoreError({ message: 'injected failure', exitCode: 1, stderr: 'injected failure', line: null, context: '' });
      return ipt.restore(text, opts);
    },
    save: (tables, opts) => ipt.save(tables, opts),
  };
}

/**
 * The iptables mode itself (IptablesMode, as the agent runs it) over a sequence of clusters, one after the other as
 * events would bring them, both families: a full sync of the first, then partial syncs, every second cluster after a
 * restart (a new mode's full sync over the tables the old one left), optionally split into several restores, and
 * optionally one restore that fails mid-sync (the sync is retried, as the runner does, and must then repair whatever
 * the earlier restores of the failed sync left). After every successful sync the live filter and nat tables must hold
 * exactly the render: no stale chain, no missing or extra rule, no jump missing or doubled.
 */
export async function iptablesSequenceFailures(
  iptablesOf: (family: Family) => Iptables,
  seq: IptablesSequence,
): Promise<{ failures: string[]; injected: number }> {
  const failures: string[] = [];
  const inj = new Injector(seq.fail);
  const config = sequenceConfig(seq.clusters);
  for (const family of ['IPv4', 'IPv6'] as const) {
    const real = iptablesOf(family);
    const ipt = failingIptables(real, () => inj.failing());
    const start = () =>
      new IptablesMode(
        { iptables: new Map([[family, ipt]]), render: renderOptionsFrom(config, { randomFully: false }), batchChains: seq.batchChains },
        { clock: new ManualClock(1_000_000), logger: silentLogger() },
      );
    let mode = start();
    for (const [i, c] of seq.clusters.entries()) {
      const snapshot = sequenceSnapshot(c, config, family);
      const restart = i > 0 && i % 2 === 0;
      if (restart) mode = start();
      inj.arm(i);
      const name = `sync ${i}${restart ? ' after a restart' : ''}${seq.batchChains ? ` (batches of ${seq.batchChains} chains)` : ''}`;
      const full = await syncRetried(
        `${family} ${name}`,
        async () => (await mode.sync(snapshot, { periodic: false, previous: null })).full,
        inj,
        failures,
      );
      inj.disarm();
      if (full === null) return { failures, injected: inj.injected };
      const saved = parseSave(await real.save(['filter', 'nat']), family);
      const d = diffRulesets(mode.lastRender(family)!.ruleset, saved);
      if (!d.identical)
        failures.push(
          `${family} after ${name} (${full ? 'full' : 'partial'}, ${snapshot.services.length} service ports):\n${formatDiff(d).slice(0, 3000)}`,
        );
      // What the kernel holds is what was written: the periodic sync's check of the tables (drift.ts) finds nothing.
      else if ((await mode.sync(snapshot, { periodic: true, previous: snapshot })).full)
        failures.push(`${family} after ${name}: the periodic sync saw an outside change where there was none`);
    }
  }
  return { failures, injected: inj.injected };
}

/** A node port another process holds (the holder reports a conflict and the port gets no rules): every 11th. */
const takenNodePort = (port: number) => port % 11 === 0;

/** A PortHolder that binds nothing: it holds every port but takenNodePort's. */
function fakePortHolder(): PortHolder {
  const held = new Set<string>();
  return {
    async reconcile(wanted) {
      held.clear();
      const conflicts = new Map<string, string>();
      for (const w of wanted) {
        const key = `${w.port}/${w.protocol}`;
        if (takenNodePort(w.port)) conflicts.set(key, `can't open node port ${key}: in use`);
        else held.add(key);
      }
      return conflicts;
    },
    has: (port, protocol) => held.has(`${port}/${protocol}`),
    closeAll: async () => held.clear(),
  };
}

const PORTAL_NAT_CHAINS = ['KUBE-PORTALS-CONTAINER', 'KUBE-PORTALS-HOST', 'KUBE-NODEPORT-CONTAINER', 'KUBE-NODEPORT-HOST'];

/**
 * The userspace mode itself (UserspaceMode, as the agent runs it) over a sequence of clusters, each family with its
 * own mode (0.0.0.0 or :: as --bind-address), every second cluster after a restart, optionally one restore that fails
 * (retried as the runner does; the retry must be full). Listeners are recorded, not opened, and node ports held by a
 * holder that binds nothing (every 11th is "in use"), so no socket is opened in the test's own namespace. After every
 * sync:
 * - exactly the listeners the service ports need are open (one each, a second for external traffic when the policies
 *   select other endpoints), and each one's balancer hands out exactly its endpoints;
 * - the live nat and filter tables hold exactly the portal rules and jumps the mode rendered (diff converged);
 * - every portal rule sends traffic to a listener that is open now, with the rule's protocol; every cluster IP and every
 *   node port held has a portal to its service port's listener (the external one for node ports).
 */
export async function userspaceSequenceFailures(
  iptablesOf: (family: Family) => Iptables,
  seq: ModeSequence,
): Promise<{ failures: string[]; injected: number }> {
  const failures: string[] = [];
  const inj = new Injector(seq.fail);
  const config = sequenceConfig(seq.clusters, ['--proxy-mode=userspace']);
  for (const family of ['IPv4', 'IPv6'] as const) {
    const real = iptablesOf(family);
    const ipt = failingIptables(real, () => inj.failing());
    let nextPort = 40_000;
    const detectLocal = detectLocalFrom(config);
    /** A new process: its mode, the listeners it has open (by id) and its balancer. */
    const start = () => {
      const open = new Map<string, { port: number; protocol: 'TCP' | 'UDP' }>();
      const balancer = new RoundRobinBalancer({ now: () => 0 });
      const mode = new UserspaceMode(
        {
          iptables: new Map([[family, ipt]]),
          bindAddress: family === 'IPv4' ? '0.0.0.0' : '::',
          portRange: '',
          udpIdleTimeoutMs: 250_000,
          detectLocal,
        },
        {
          clock: new ManualClock(1_000_000),
          logger: silentLogger(),
          balancer,
          portHolder: fakePortHolder(),
          fallbackHostIP: () => (family === 'IPv4' ? '192.168.50.11' : 'fd00:192:168:50::11'),
          opener: async (spec, port) => {
            const p = port || nextPort++;
            open.set(spec.id, { port: p, protocol: spec.protocol });
            return { port: p, close: async () => void open.delete(spec.id) };
          },
        },
      );
      return { mode, open, balancer };
    };
    let run = start();
    for (const [i, c] of seq.clusters.entries()) {
      const snapshot = sequenceSnapshot(c, config, family);
      const restart = i > 0 && i % 2 === 0;
      if (restart) {
        await run.mode.close();
        run = start();
      }
      const { mode, open, balancer } = run;
      inj.arm(i);
      const name = `${family} sync ${i}${restart ? ' after a restart' : ''}`;
      const full = await syncRetried(name, async () => (await mode.sync(snapshot, { periodic: false, previous: null })).full, inj, failures);
      inj.disarm();
      if (full === null) return { failures, injected: inj.injected };
      const fail = (what: string) => failures.push(`${name} (${full ? 'full' : 'partial'}, ${snapshot.services.length} service ports): ${what}`);

      // Listeners and balancers.
      const roles = snapshot.services.map((s) => ({ s, roles: listenerRoles(s) }));
      const wanted = roles.flatMap((r) => r.roles.map((x) => x.spec.id)).sort();
      const have = [...open.keys()].sort();
      if (wanted.join() !== have.join()) fail(`listeners open ${JSON.stringify(have)}, wanted ${JSON.stringify(wanted)}`);
      for (const { roles: rs } of roles) {
        for (const role of rs) {
          const want = [...new Set(role.endpoints.map(endpointString))].sort();
          const got = want.length
            ? [
                ...new Set(want.map(() => balancer.next(role.spec.id, '198.51.100.1', true)).map((p) => ('endpoint' in p ? p.endpoint : p.error))),
              ].sort()
            : [];
          if (want.join() !== got.join()) fail(`listener ${role.spec.id} balances over ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
        }
      }

      // The kernel holds what the mode rendered.
      const applied = mode.inspect.rules()[0]?.applied;
      const live = parseSave(await real.save(['nat', 'filter']), family);
      if (!applied) fail('no applied rules recorded');
      else {
        const d = diffRulesets(parseSave(applied.text(), family), live);
        if (!d.identical) fail(`live rules differ from the render:\n${formatDiff(d).slice(0, 2000)}`);
      }

      // What the portals point at.
      const ports = new Map([...open.values()].map((l) => [l.port, l.protocol]));
      const portals = PORTAL_NAT_CHAINS.flatMap((chain) =>
        (live.tables.find((t) => t.name === 'nat')?.chains.find((x) => x.name === chain)?.rules ?? []).map((rule) => ({ chain, rule })),
      );
      for (const { chain, rule } of portals) {
        const to = /--to-ports (\d+)$/.exec(rule)?.[1] ?? /--to-destination \S*:(\d+)$/.exec(rule)?.[1];
        const proto = /-p (tcp|udp)\b/.exec(rule)?.[1]?.toUpperCase();
        if (to === undefined || proto === undefined) fail(`${chain} rule without a listener port or protocol: ${rule}`);
        else if (ports.get(Number(to)) !== proto) fail(`${chain} rule points at ${to}/${proto}, no listener open there: ${rule}`);
      }
      const plen = family === 'IPv4' ? 32 : 128;
      for (const { s, roles: rs } of roles) {
        if (!rs.length) continue;
        const sp = s.service;
        const internal = open.get(rs[0]!.spec.id)?.port;
        const external = open.get(rs[rs.length - 1]!.spec.id)?.port;
        const proto = sp.protocol.toLowerCase();
        const hits = (chain: string, match: (r: string) => boolean) => portals.some((p) => p.chain === chain && match(p.rule));
        if (
          sp.clusterIP &&
          !hits(
            'KUBE-PORTALS-CONTAINER',
            (r) =>
              r.includes(`-d ${sp.clusterIP}/${plen} `) &&
              r.includes(`-p ${proto} `) &&
              new RegExp(`--dport ${sp.port}\\b`).test(r) &&
              r.endsWith(`--to-ports ${internal}`),
          )
        )
          fail(`no container portal from ${sp.clusterIP}:${sp.port}/${sp.protocol} to its listener ${internal}`);
        if (
          sp.nodePort &&
          !takenNodePort(sp.nodePort) &&
          !hits(
            'KUBE-NODEPORT-CONTAINER',
            (r) => r.includes(`-p ${proto} `) && new RegExp(`--dport ${sp.nodePort}\\b`).test(r) && r.endsWith(`--to-ports ${external}`),
          )
        )
          fail(`no node port portal from ${sp.nodePort}/${sp.protocol} to its listener ${external}`);
      }
    }
    await run.mode.close();
  }
  return { failures, injected: inj.injected };
}

/** A table diff in a few lines: what is missing or extra, and each differing chain's missing and extra rules. */
export function diffSummary(d: TableDiff): string {
  const cut = (names: readonly string[]) => names.map((n) => n.slice(0, 90)).join(', ');
  const lines = [
    d.missingChains.length ? `missing chains: ${cut(d.missingChains)}` : '',
    d.extraChains.length ? `extra chains with rules: ${cut(d.extraChains)}` : '',
    ...d.chains.map((c) => `chain ${c.chain.slice(0, 90)}: missing ${JSON.stringify(c.missing)} extra ${JSON.stringify(c.extra)}`),
    d.missingSets.length || d.extraSets.length ? `sets missing ${cut(d.missingSets)} extra ${cut(d.extraSets)}` : '',
    d.missingCounters.length || d.extraCounters.length ? `counters missing ${cut(d.missingCounters)} extra ${cut(d.extraCounters)}` : '',
    ...d.sets.map(
      (x) =>
        `set ${x.set}: ${x.missing.length} missing, ${x.extra.length} extra, ${x.changed.length} changed elements` +
        (x.changed[0] ? ` (first: ${JSON.stringify(x.changed[0].desired)} listed as ${JSON.stringify(x.changed[0].live)})` : ''),
    ),
  ];
  return lines.filter(Boolean).join('\n  ').slice(0, 3000);
}
