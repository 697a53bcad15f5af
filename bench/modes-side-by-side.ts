/**
 * The iptables and nftables modes side by side on the same clusters (run by
 * `npm run bench` after bench/iptables-sync.ts, as root): N services x 5
 * endpoints, N from BENCH_SIZES (default 1,000 and 10,000). Each mode and
 * size runs in a child process of its own (bench/mode-figures.ts), in a
 * network namespace of its own (`unshare --net`), with the agent's V8 flag
 * `--max-semi-space-size=2`; the children run one after another, iptables
 * first. Figures are medians with (min–max, n); ratios are taken per pair
 * (a sync and its floor measured back to back) and then summarised.
 *
 * A full nftables sync at 10,000 services takes about a minute (the kernel
 * walks every set of the table for each anonymous `numgen` vmap, see
 * nftables/README.md), as does its floor: BENCH_NFT_FULL_REPS (default 1)
 * pairs are measured there, and the full sync at 3,000 services (5 pairs) is
 * printed beside it, with its extrapolation to 10,000 by the square of the size.
 * BENCH_SIDE_JSON=<file> also writes every measurement there.
 *
 * BENCH_NFT_GENERATION (default B, the mode's) picks the nftables ruleset shape
 * (nftables/objects.ts NftGeneration); a list ("A,B") runs the nftables mode
 * once per entry, one child each, in that order, as columns "nftables A",
 * "nftables B". BENCH_IPTABLES=0 leaves the iptables mode out, BENCH_AT3K=0
 * the full syncs at 3,000 services.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

interface Pair {
  ms: number;
  /** Of which the sync's writes (restores, transactions) took this long. */
  writesMs: number;
  floor: number;
  session: number | null;
  bytes: number;
  writes: number;
}
interface Figures {
  mode: string;
  generation?: string;
  services: number;
  firstSyncMs: number;
  latencies: number[];
  peakRssMB: number;
  partial: Pair[];
  full: Pair[];
}

const figuresScript = new URL('./mode-figures.ts', import.meta.url).pathname;
const outside = readlinkSync('/proc/self/ns/net');

function run(mode: string, n: number, counts: { events: number; partial: number; full: number }, generation?: string): Figures {
  const t0 = performance.now();
  const args = ['--net', process.execPath, '--max-semi-space-size=2', figuresScript, mode, String(n), `outside=${outside}`];
  for (const [k, v] of Object.entries(counts)) args.push(`${k}=${v}`);
  if (generation !== undefined) args.push(`generation=${generation}`);
  const r = spawnSync('unshare', args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${mode} at ${n} services failed (exit ${r.status ?? r.signal})`);
  const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Figures;
  console.log(
    `  ${mode}${generation ? ` ${generation}` : ''} at ${n.toLocaleString('en')} services: ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return f;
}

const fmt = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en') : x.toFixed(1));
const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (v: readonly number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const spread = (v: readonly number[], unit = ' ms'): string =>
  v.length === 0
    ? ''
    : v.length === 1
      ? `${fmt(v[0]!)}${unit} (n=1)`
      : `${fmt(median(v))}${unit} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))}, n=${v.length})`;
const ratio = (v: readonly number[], digits = 2): string =>
  v.length === 0
    ? ''
    : v.length === 1
      ? v[0]!.toFixed(digits)
      : `${median(v).toFixed(digits)} (${Math.min(...v).toFixed(digits)}–${Math.max(...v).toFixed(digits)})`;
const per = (ps: readonly Pair[], f: (p: Pair) => number | null): number[] => ps.map(f).filter((x): x is number => x !== null);

const sizes = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
const nftFullReps = Number(process.env['BENCH_NFT_FULL_REPS'] ?? 1);
const generations = (process.env['BENCH_NFT_GENERATION'] ?? 'B').split(',');
const withIptables = process.env['BENCH_IPTABLES'] !== '0';
const withAt3k = process.env['BENCH_AT3K'] !== '0';
// Columns are labelled with the generation only when more than one runs (the default output is unchanged).
const label = (g: string) => (generations.length > 1 || g !== 'B' ? g : undefined);
const started = performance.now();
console.log(`\nModes side by side (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs); one child per mode and size:`);
const cols: Figures[] = [];
let at3k: Figures | null = null;
for (const n of sizes) {
  const big = n > 3000;
  if (withIptables) cols.push(run('iptables', n, { events: 100, partial: 8, full: big ? 3 : 5 }));
  for (const g of generations) cols.push(run('nftables', n, { events: 100, partial: 8, full: big ? nftFullReps : 5 }, label(g)));
  if (big && at3k === null && withAt3k) at3k = run('nftables', 3000, { events: 0, partial: 0, full: 5 }, label(generations[0]!));
}

if (process.env['BENCH_SIDE_JSON']) writeFileSync(process.env['BENCH_SIDE_JSON'], JSON.stringify({ cols, at3k }, null, 1));

const rows: [string, (f: Figures) => string][] = [
  ['first sync onto an empty namespace', (f) => `${fmt(f.firstSyncMs)} ms`],
  ['full sync (requested, over the loaded rules)', (f) => spread(per(f.full, (p) => p.ms))],
  ['  of which the writes', (f) => spread(per(f.full, (p) => p.writesMs))],
  ['  floor: the same writes alone', (f) => spread(per(f.full, (p) => p.floor))],
  ['  full sync / floor, per pair', (f) => ratio(per(f.full, (p) => p.ms / p.floor))],
  ['  bytes written (restores or transactions)', (f) => (f.full[0] ? `${(f.full[0].bytes / 1e6).toFixed(1)} MB (${f.full[0].writes})` : '')],
  ['partial sync, one endpoint fewer / back', (f) => spread(per(f.partial, (p) => p.ms))],
  ['  bytes written', (f) => (f.partial[0] ? `${f.partial[0].bytes} / ${f.partial[1]?.bytes ?? ''}` : '')],
  ['  of which the write', (f) => spread(per(f.partial, (p) => p.writesMs))],
  ['  floor: the same write alone (tool)', (f) => spread(per(f.partial, (p) => p.floor))],
  ['  floor: the same write alone (nft -i session)', (f) => spread(per(f.partial, (p) => p.session))],
  [
    '  partial / full sync, medians',
    (f) => (f.full.length ? `${((median(per(f.partial, (p) => p.ms)) / median(per(f.full, (p) => p.ms))) * 100).toFixed(2)} %` : ''),
  ],
  [
    'event to rules, p50 / p99 (min sync period 0)',
    (f) => `${fmt(pct(f.latencies, 50))} / ${fmt(pct(f.latencies, 99))} ms (n=${f.latencies.length})`,
  ],
  [
    '  p99 / partial floor (the channel the mode uses)',
    (f) => (pct(f.latencies, 99) / median(per(f.partial, (p) => p.session ?? p.floor))).toFixed(2),
  ],
  ['agent path peak RSS', (f) => `${fmt(f.peakRssMB)} MB`],
];
const head = cols.map((f) => `${f.services.toLocaleString('en')} ${f.mode}${f.generation ? ` ${f.generation}` : ''}`);
const w0 = Math.max(...rows.map(([l]) => l.length));
const widths = cols.map((f, i) => Math.max(head[i]!.length, ...rows.map(([, g]) => g(f).length)));
console.log(`\n${''.padEnd(w0)}  ${head.map((h, i) => h.padStart(widths[i]!)).join('  ')}`);
for (const [label, get] of rows) console.log(`${label.padEnd(w0)}  ${cols.map((f, i) => get(f).padStart(widths[i]!)).join('  ')}`);

if (at3k !== null) {
  const m = median(per(at3k.full, (p) => p.ms));
  console.log(
    `\nnftables full sync at 3,000 services: ${spread(per(at3k.full, (p) => p.ms))}, floor ${spread(per(at3k.full, (p) => p.floor))}, ` +
      `per pair ${ratio(per(at3k.full, (p) => p.ms / p.floor))}; x (10,000/3,000)^2 = ~${((m * (10 / 3) ** 2) / 1000).toFixed(0)} s`,
  );
}
console.log('\nGoals (nftables mode):');
for (const f of cols.filter((c) => c.mode === 'nftables')) {
  const ipt = cols.find((c) => c.mode === 'iptables' && c.services === f.services);
  const fullRatio = median(per(f.full, (p) => p.ms / p.floor));
  const partialShare = median(per(f.partial, (p) => p.ms)) / median(per(f.full, (p) => p.ms));
  const p99 = pct(f.latencies, 99);
  const at10k = f.services >= 10_000;
  const verdict = (ok: boolean, applies = true) => (applies ? (ok ? 'met' : 'NOT met') : 'goal set at 10,000');
  const lines = [
    `full sync / floor ${fullRatio.toFixed(2)} (goal <= 1.15): ${verdict(fullRatio <= 1.15)}`,
    `partial / full ${(partialShare * 100).toFixed(2)} % (goal <= 2 %): ${verdict(partialShare <= 0.02, at10k)}`,
    `event-to-rules p99 ${fmt(p99)} ms (goal <= 50 ms): ${verdict(p99 <= 50, at10k)}`,
    ipt
      ? `agent RSS ${fmt(f.peakRssMB)} MB vs iptables mode ${fmt(ipt.peakRssMB)} MB: ${verdict(f.peakRssMB <= ipt.peakRssMB)}`
      : `agent RSS ${fmt(f.peakRssMB)} MB`,
  ];
  console.log(`  ${f.services.toLocaleString('en')} services${f.generation ? ` (generation ${f.generation})` : ''}: ${lines.join('; ')}`);
}
console.log(`(side by side took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
