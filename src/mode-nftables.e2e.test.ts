/**
 * startNftablesMode on the real nft (needs root), in a network namespace of
 * its own: the process's full collection (collectGarbage) runs while nft
 * applies the cold start's large transactions, and never for a partial sync;
 * stale chains are deleted by an nft process of their own, which ends after;
 * a restarted process writes every endpoint chain it finds (one the old
 * process left flushed comes back whole), and deletes only the UDP
 * conntrack entries that are stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffTables, isEmptyDiff } from '../nftables/diff.ts';
import { Nft } from '../nftables/nft.ts';
import { NftablesMode } from '../nftables/nftables-mode.ts';
import { tableOf } from '../nftables/render.ts';
import { TABLE_NAME } from '../nftables/model.ts';
import { upstreamSnapshot } from '../nftables/upstream.case.ts';
import { realClock } from './system/clock.ts';
import { createConntrack } from '../proxier/conntrack.ts';
import { silentLogger } from '../proxier/log.ts';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { configFromFlags } from './config.ts';
import { COLLECT_AFTER_BYTES, startNftablesMode } from './mode-nftables.ts';
import { createExecaRunner } from './system/exec.ts';
import { createNetnsOps } from './system/netns.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const PREFIX = 'kptmodenft';
const NS = `${PREFIX}-${process.pid}`;

beforeAll(async () => {
  await net.sweepNamespaces(PREFIX);
  await net.addNamespace(NS);
});
afterAll(async () => net.sweepNamespaces(PREFIX));

const SERVICES = 400;
// Session affinity: generation B, the default (upstream v1.36+), keeps endpoint chains only with it, and these tests are
// about endpoint chains (each gets an affinity set too).
const svc = (i: number) =>
  makeService('ns1', `svc-${i}`, { clusterIP: `172.30.${i >> 8}.${i & 255}`, sessionAffinity: 'ClientIP', ports: [{ name: 'p80', port: 80 }] });
const eps = (i: number, last: number) =>
  makeEndpointSlice('ns1', `svc-${i}`, `svc-${i}-1`, {
    endpoints: [1, 2, last].map((k) => ({ ip: `10.${i >> 8}.${i & 255}.${k}` })),
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  });

const config = () =>
  configFromFlags(
    new Map<string, string | number>([
      ['mode', 'nftables'],
      ['cluster-cidr', '10.0.0.0/8'],
    ]),
  );
const noConntrack = { deleteEntries: async () => ({ deleted: 0, errors: [] }), listEntries: async () => [] };

/** The nft processes in the test's namespace. */
async function nftProcesses(): Promise<string[]> {
  const pids = (await runner.run('ip', ['netns', 'pids', NS])).stdout.split('\n').filter(Boolean);
  const out: string[] = [];
  for (const pid of pids) {
    const cmd = (await runner.run('cat', [`/proc/${pid}/cmdline`])).stdout.split('\0').join(' ').trim();
    if (cmd.startsWith('nft ')) out.push(cmd);
  }
  return out;
}

describe('startNftablesMode with the process collector (collectGarbage)', () => {
  it('collects while nft applies each large cold-start transaction, and not for a partial sync; the table is whole', async () => {
    const calls: { pending: boolean }[] = [];
    let pending = false;
    const mode = await startNftablesMode(config(), {
      runner: createExecaRunner({ netns: NS }),
      clock: realClock,
      logger: silentLogger(),
      conntrack: noConntrack,
      collectGarbage: () => calls.push({ pending }),
    });
    try {
      expect(mode).toBeInstanceOf(NftablesMode);
      const services = Array.from({ length: SERVICES }, (_, i) => svc(i));
      const snapshot = (last: number) =>
        upstreamSnapshot(
          'IPv4',
          services,
          services.map((_, i) => eps(i, i === 7 ? last : 3)),
        );
      pending = true;
      const first = await mode.sync(snapshot(3), { periodic: false, previous: null });
      pending = false;
      expect(first.full).toBe(true);
      // The cold start: a small first transaction (the table, base chains, fixed sets), then one chunk of service
      // ports of ~2 kB each, over COLLECT_AFTER_BYTES.
      expect(first.bytes).toBeGreaterThan(COLLECT_AFTER_BYTES);
      expect(calls).toEqual([{ pending: true }]);

      const second = await mode.sync(snapshot(9), { periodic: false, previous: null });
      expect(second.full).toBe(false);
      expect(second.bytes).toBeLessThan(COLLECT_AFTER_BYTES);
      expect(calls).toHaveLength(1);

      const listed = await createExecaRunner({ netns: NS }).run('nft', ['list', 'chains', 'ip']);
      expect(listed.stdout).toContain(`table ip ${TABLE_NAME}`);
      // Three endpoint chains per service port, and svc-7's replaced one: flushed now, deleted by a later sync (>= 1 s).
      expect(listed.stdout.match(/chain endpoint-/g)).toHaveLength(SERVICES * 3 + 1);
    } finally {
      await mode.close();
    }
  });
});

/** 20 service ports with endpoints .1, .2, .3, but svc-7's last one is .`last`. */
function twenty(last: number) {
  const services = Array.from({ length: 20 }, (_, i) => svc(i));
  return upstreamSnapshot(
    'IPv4',
    services,
    services.map((_, i) => eps(i, i === 7 ? last : 3)),
  );
}

describe('startNftablesMode: stale chains', () => {
  it('are deleted by an nft process of their own, beside the sync session, which ends after each deletion', async () => {
    const mode = await startNftablesMode(config(), {
      runner: createExecaRunner({ netns: NS }),
      clock: realClock,
      logger: silentLogger(),
      conntrack: noConntrack,
    });
    const list = async () => (await createExecaRunner({ netns: NS }).run('nft', ['list', 'chains', 'ip'])).stdout;
    try {
      await mode.sync(twenty(3), { periodic: false, previous: null });
      await mode.sync(twenty(9), { periodic: false, previous: null }); // 10.0.7.3's chain is flushed, stale
      expect(await list()).toContain('__10.0.7.3/80');
      await new Promise((r) => setTimeout(r, 1100));
      const quiet = await mode.sync(twenty(9), { periodic: true, previous: null }); // nothing to write: the deletion starts
      expect(quiet.failures).toEqual([]);
      const change = await mode.sync(twenty(11), { periodic: false, previous: null });
      expect(change.full).toBe(false);
      await mode.deletionsDone();
      const chains = await list();
      expect(chains).not.toContain('__10.0.7.3/80');
      expect(chains).toContain('__10.0.7.9/80'); // flushed by the change, deleted a second later at the earliest
      expect(chains).toContain('__10.0.7.11/80');
      // The sync session's process lives on; the deletion's has ended.
      expect(await nftProcesses()).toEqual(['nft -t -j -i']);
    } finally {
      await mode.close();
    }
    expect(await nftProcesses()).toEqual([]);
  });
});

describe('startNftablesMode after a restart (not upstream epChainSkipUpdate)', () => {
  it('writes every endpoint chain it finds: one the old process left flushed comes back with its rules when its endpoint does', async () => {
    const exec = createExecaRunner({ netns: NS });
    const start = () => startNftablesMode(config(), { runner: exec, clock: realClock, logger: silentLogger(), conntrack: noConntrack });
    const handles = async (ip: string) => {
      const chains = (await exec.run('nft', ['list', 'chains', 'ip'])).stdout;
      const name = chains.match(new RegExp(`chain (endpoint-\\S+__${ip.replaceAll('.', '\\.')}/80)`))![1]!;
      const listed = await exec.run('nft', ['-a', 'list', 'chain', 'ip', TABLE_NAME, name]);
      return [...listed.stdout.matchAll(/# handle (\d+)/g)].map((m) => m[1]).slice(1); // the chain's own handle first
    };
    await exec.run('nft', ['delete', 'table', 'ip', TABLE_NAME]);
    const first = await start();
    try {
      await first.sync(twenty(3), { periodic: false, previous: null });
      // 10.0.7.3 goes: its chain is flushed now, to be deleted at least 1 s later; the process stops before that.
      await first.sync(twenty(9), { periodic: false, previous: null });
    } finally {
      await first.close();
    }
    expect(await handles('10.0.7.3')).toEqual([]);
    const unchanged = await handles('10.0.3.1');
    expect(unchanged).toHaveLength(2); // the affinity update and the DNAT (generation B: the hairpin masquerade is a set element)

    // 10.0.7.3 is back when the new process starts: upstream's epChainSkipUpdate would keep its empty chain.
    const second = await start();
    try {
      const r = await second.sync(twenty(3), { periodic: false, previous: null });
      expect(r.full).toBe(true);
      expect(await handles('10.0.7.3')).toHaveLength(2);
      // Every endpoint chain is written again, the unchanged ones too (new rule handles).
      const rewritten = await handles('10.0.3.1');
      expect(rewritten).toHaveLength(2);
      expect(rewritten).not.toEqual(unchanged);
      const d = diffTables(tableOf(second.lastRender('IPv4')!), (await new Nft(exec).list('ip'))!);
      // 10.0.7.9's chain and affinity set: stale, deleted a second later at the earliest.
      const rest = {
        ...d,
        extraChains: d.extraChains.filter((c) => !c.endsWith('__10.0.7.9/80')),
        extraSets: d.extraSets.filter((c) => !c.endsWith('__10.0.7.9/80')),
      };
      expect(isEmptyDiff(rest), JSON.stringify(rest)).toBe(true);
    } finally {
      await second.close();
    }
  });
});

describe('startNftablesMode: UDP conntrack entries (upstream CleanStaleEntries)', () => {
  const exec = createExecaRunner({ netns: NS });
  const conntrack = createConntrack({ runner: exec });
  const start = () => startNftablesMode(config(), { runner: exec, clock: realClock, logger: silentLogger(), conntrack });
  const dns = makeService('ns1', 'dns', { clusterIP: '172.30.1.1', ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] });
  const slice = (ips: string[], port = 5353) =>
    makeEndpointSlice('ns1', 'dns', 'dns-1', { endpoints: ips.map((ip) => ({ ip })), ports: [{ name: 'dns', port, protocol: 'UDP' }] });
  const sync = (mode: NftablesMode, ips: string[], port = 5353) =>
    mode.sync(upstreamSnapshot('IPv4', [dns], [slice(ips, port)]), { periodic: false, previous: null });
  /** The service's entries by the endpoint ("ip:port") that answers them (the DNATed flows go nowhere: their reply source is the endpoint all the same). */
  const entries = async () => {
    const byEndpoint = new Map<string, number>();
    for (const e of await conntrack.listEntries('IPv4')) {
      const k = `${e.replySrc}:${e.replySrcPort}`;
      if (e.origDst === '172.30.1.1') byEndpoint.set(k, (byEndpoint.get(k) ?? 0) + 1);
    }
    return byEndpoint;
  };
  /** Flows from `n` client ports to the service (numgen spreads them over the endpoints). */
  const send = async (from: number, n: number) => {
    for (let port = from; port < from + n; port++)
      await exec.run('socat', ['-u', '-', `UDP4-SENDTO:172.30.1.1:53,sourceport=${port}`], { input: 'q' });
  };
  beforeAll(async () => {
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['route', 'replace', '172.30.0.0/16', 'dev', 'lo'],
      ['route', 'replace', '10.0.0.0/8', 'dev', 'lo'],
    ])
      expect((await exec.run('ip', args)).code).toBe(0);
  });

  it('a target port change deletes the flows DNATed to the old port of the same endpoint IP (upstream #130542: reply source IP and port)', async () => {
    await exec.run('nft', ['delete', 'table', 'ip', TABLE_NAME]);
    await exec.run('conntrack', ['-F']);
    const mode = await start();
    try {
      await sync(mode, ['10.1.0.1'], 5353);
      await send(42000, 4);
      expect(await entries()).toEqual(new Map([['10.1.0.1:5353', 4]]));
      // The Service's targetPort becomes 5354; the endpoint keeps its IP (a hostNetwork pod, or a pod that serves both).
      const r = await sync(mode, ['10.1.0.1'], 5354);
      expect(r.failures).toEqual([]);
      expect(r.conntrackDeleted).toBe(4);
      await send(42000, 4);
      expect(await entries()).toEqual(new Map([['10.1.0.1:5354', 4]]));
    } finally {
      await mode.close();
    }
  });

  it('finds and deletes stale flows with conntrack accounting on (net.netfilter.nf_conntrack_acct=1: counters in every entry)', async () => {
    await exec.run('nft', ['delete', 'table', 'ip', TABLE_NAME]);
    await exec.run('conntrack', ['-F']);
    expect((await exec.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1'])).code).toBe(0);
    const mode = await start();
    try {
      await sync(mode, ['10.1.0.1', '10.1.0.2']);
      await send(43000, 24);
      const before = await entries();
      expect(before.get('10.1.0.2:5353')).toBeGreaterThan(0);
      const r = await sync(mode, ['10.1.0.1']);
      expect(r.failures).toEqual([]);
      expect(r.conntrackDeleted).toBe(before.get('10.1.0.2:5353'));
      expect(await entries()).toEqual(new Map([['10.1.0.1:5353', before.get('10.1.0.1:5353')]]));
    } finally {
      await mode.close();
      await exec.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=0']);
    }
  });

  it('a restart deletes the flows to an endpoint removed while it was down and keeps those to endpoints that still serve (upstream #122740)', async () => {
    await exec.run('nft', ['delete', 'table', 'ip', TABLE_NAME]);
    await exec.run('conntrack', ['-F']);
    const first = await start();
    try {
      await sync(first, ['10.1.0.1', '10.1.0.2']);
      await send(41000, 24);
    } finally {
      await first.close();
    }
    const before = await entries();
    expect(before.get('10.1.0.1:5353')).toBeGreaterThan(0);
    expect(before.get('10.1.0.2:5353')).toBeGreaterThan(0);

    const second = await start();
    try {
      const r = await sync(second, ['10.1.0.1']);
      expect(r.failures).toEqual([]);
      expect(r.conntrackDeleted).toBe(before.get('10.1.0.2:5353'));
      expect(await entries()).toEqual(new Map([['10.1.0.1:5353', before.get('10.1.0.1:5353')]]));
    } finally {
      await second.close();
    }
  });
});
