/**
 * What the conntrack reconciler (proxier/conntrack.ts reconcileConntrack)
 * costs after a sync, at 1,000 and 10,000 UDP entries (run: `npm run
 * bench:conntrack`, as root). The script re-runs itself in a private network
 * namespace (`unshare --net`) and refuses to go on if it still sees the
 * host's. There, one nft rule DNATs a UDP service, 172.30.1.1:53, to two
 * endpoints at random, and one UDP socket per client port sends it a packet:
 * one conntrack entry each, answered by 10.1.0.1 or 10.1.0.2.
 * Per size, REPS times:
 *   - a reconcile with nothing stale (both endpoints serve): what every sync
 *     that changes a UDP service port pays; split into `conntrack -L` and the
 *     parse and plan;
 *   - a reconcile after 10.1.0.2 went away: the listing, then one
 *     `conntrack -D --orig-dst 172.30.1.1 --dport 53 --reply-src 10.1.0.2 --reply-port-src 53`
 *     deleting about half of the entries (made again before each rep).
 */
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseConntrackList, staleConntrackFilters } from '../proxier/conntrack-plan.ts';
import { createConntrack, reconcileConntrack } from '../proxier/conntrack.ts';
import type { Snapshot } from '../proxier/types.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { inOwnNetworkNamespace } from './own-netns.ts';
import { fmt, summarize } from './stats.ts';

inOwnNetworkNamespace(import.meta.filename, 'touch conntrack');

const REPS = 5;
const SIZES = (process.env['BENCH_CONNTRACK_SIZES'] ?? '1000,10000').split(',').map(Number);
const runner = createExecaRunner();
const conntrack = createConntrack({ runner });

async function must(cmd: string, args: string[], input?: string): Promise<void> {
  const r = await runner.run(cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
}

await must('ip', ['link', 'set', 'lo', 'up']);
await must('ip', ['route', 'add', '172.30.0.0/16', 'dev', 'lo']);
await must('ip', ['route', 'add', '10.0.0.0/8', 'dev', 'lo']);
await must(
  'nft',
  ['-f', '-'],
  'table ip bench {\n chain out {\n  type nat hook output priority -100 ;\n  ip daddr 172.30.1.1 udp dport 53 dnat to numgen random mod 2 map { 0 : 10.1.0.1 , 1 : 10.1.0.2 }\n }\n}\n',
);

/** One entry per client port: a socket sends one datagram from it and closes. */
async function makeEntries(n: number): Promise<void> {
  await must('conntrack', ['-F']).catch(() => undefined);
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => s.send('q', 53, '172.30.1.1', (err) => (err ? reject(err) : resolve())));
    s.close();
  }
}

const service = servicePort({
  key: 'bench/dns:dns',
  namespace: 'bench',
  name: 'dns',
  portName: 'dns',
  protocol: 'UDP',
  clusterIP: '172.30.1.1',
  port: 53,
});
const serving = (ips: string[]): Snapshot =>
  snapshotOf([
    portState(
      service,
      // The nft rule DNATs to the address only, so the endpoints answer on the service port: the reconciler matches both.
      ips.map((ip) => endpoint(ip, { port: 53 })),
    ),
  ]);
const both = serving(['10.1.0.1', '10.1.0.2']);
const one = serving(['10.1.0.1']);

const ms = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const line = (label: string, value: string) => console.log(`  ${label.padEnd(58)} ${value}`);

const started = performance.now();
for (const n of SIZES) {
  const setup = await ms(() => makeEntries(n));
  const listed = parseConntrackList((await runner.run('conntrack', ['-L', '-p', 'udp'])).stdout);
  console.log(
    `${n.toLocaleString('en')} UDP conntrack entries (made in ${(setup / 1000).toFixed(1)} s; ${listed.length.toLocaleString('en')} listed)`,
  );
  const quiet: number[] = [];
  const list: number[] = [];
  const plan: number[] = [];
  const stale: number[] = [];
  const deletedCounts: number[] = [];
  let listingBytes = 0;
  for (let r = 0; r < REPS; r++) {
    // Nothing stale: the listing, the parse and the plan find nothing to delete.
    quiet.push(await ms(() => reconcileConntrack(conntrack, null, both)));
    let text = '';
    list.push(await ms(async () => (text = (await runner.run('conntrack', ['-L', '-p', 'udp'])).stdout)));
    listingBytes = text.length;
    plan.push(await ms(async () => staleConntrackFilters(parseConntrackList(text), both)));
    // 10.1.0.2 gone: about half of the entries are deleted.
    let deleted = 0;
    stale.push(await ms(async () => (deleted = (await reconcileConntrack(conntrack, both, one)).deleted)));
    deletedCounts.push(deleted);
    if (r < REPS - 1) await makeEntries(n);
  }
  line('reconcile, nothing stale (list + parse + plan)', `${fmt(summarize(quiet), 1)} ms`);
  line(`  of which conntrack -L -p udp (${(listingBytes / 1048576).toFixed(2)} MiB)`, `${fmt(summarize(list), 1)} ms`);
  line('  of which parse + plan', `${fmt(summarize(plan), 1)} ms`);
  line(`reconcile, one endpoint gone (~half deleted: ${fmt(summarize(deletedCounts))})`, `${fmt(summarize(stale), 1)} ms`);
}
console.log(`\n(run took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
