/**
 * The two modes as bench/mode-figures.ts measures them, each behind the one
 * ProxyMode interface, with its writes recorded where they leave the mode
 * (iptables: every `iptables-restore`; nftables: every transaction handed to
 * nft) and a way to replay them alone: the floor. Both run in the process's
 * own network namespace (the bench runs under `unshare --net`).
 *
 * iptables mode: IptablesMode on iptables-nft 1.8.9 (batches of whole
 * services, as the agent runs it with the nft backend); its floor replays a
 * sync's restores, with the same options, one after another.
 * nftables mode: NftablesMode through one NftSession (`nft -i`), and its
 * stale-chain deletions through a process of their own each, as the agent
 * runs it (nftChannels); its floor is `nft -f` of the sync's main
 * transaction alone (with the session's malloc setting), and also the same
 * text through the session alone.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import type { RestoreOptions } from '../iptables/iptables.ts';
import { DEFAULT_RENDER_OPTIONS } from '../iptables/render.ts';
import { createIptables } from '../iptables/restore.ts';
import { silentLogger } from '../proxier/log.ts';
import type { ProxyMode } from '../proxier/mode.ts';
import type { CounterOptions, ListNamesOptions } from '../nftables/nft.ts';
import { SESSION_ENV } from '../nftables/nft-session.ts';
import { nftChannels } from '../src/mode-nftables.ts';
import { NftablesMode } from '../nftables/nftables-mode.ts';
import { realClock } from '../src/system/clock.ts';
import { createExecaRunner } from '../src/system/exec.ts';
import { DETECT_LOCAL } from './mode-cluster.ts';
import type { NftGeneration } from '../nftables/objects.ts';

export type ModeName = 'iptables' | 'nftables';

/** One write that reached the kernel, and when it finished. */
export interface Write {
  readonly text: string;
  readonly opts?: RestoreOptions;
  /** When the tool was handed the write, and when it had applied it. */
  readonly startedAt: number;
  readonly doneAt: number;
}

export interface Subject {
  readonly mode: ProxyMode;
  /** Every write so far, in order. */
  readonly writes: Write[];
  /** nftables: the stale-chain deletions so far, which run beside the syncs (not in `writes`); iptables: none. */
  readonly deletions: readonly Write[];
  /** Keeps the text of every later write (for floors); off at first. */
  keepTexts(): void;
  /** Resolves when the next write has finished. */
  nextWrite(): Promise<Write>;
  /** The writes of one sync that carry its rules (nftables: the main transaction, not the stale-chain cleanup). */
  main(ofSync: readonly Write[]): readonly Write[];
  /** Replays writes alone with the plain tool: `iptables-restore`, `nft -f`. */
  floor(writes: readonly Write[]): Promise<void>;
  /** The same through the channel the mode uses, when it has its own (the nft session); else null. */
  readonly floorSession: ((writes: readonly Write[]) => Promise<void>) | null;
  /**
   * Untimed: puts back the set elements the writes delete, so that a replay of them applies (a `delete element` of a
   * missing key fails the transaction). Generation B's hairpin-connections loses an element whenever a local endpoint
   * goes, deleted by the stale cleanup (not a main transaction); generation A's partial syncs of the bench delete no
   * element, nor does the iptables mode: a no-op there.
   */
  readdDeleted(writes: readonly Write[]): Promise<void>;
  close(): Promise<void>;
}

/** Sets (not maps: a map element cannot be written back from its key alone) whose element deletions readdDeleted undoes. */
const READDABLE = /^delete element (ip6?) kube-proxy (hairpin-connections|cluster-ips) (\{.*\})$/;

/** `add element` lines for the set elements the writes delete, or "" when they delete none. */
export function readdText(writes: readonly Write[]): string {
  const out: string[] = [];
  for (const w of writes) {
    for (const line of w.text.split('\n')) {
      const m = READDABLE.exec(line);
      if (m) out.push(`add element ${m[1]} kube-proxy ${m[2]} ${m[3]}`);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** The process clock with sub-millisecond readings, for sync durations. */
export const preciseClock = { ...realClock, now: () => performance.now() };

class Recorder {
  readonly writes: Write[] = [];
  /** Off while resident memory is sampled: the texts are the bench's, not the agent's. */
  keepTexts = false;
  private waiting: ((w: Write) => void)[] = [];
  record(text: string, startedAt: number, opts?: RestoreOptions): void {
    const w: Write = { text: this.keepTexts ? text : '', startedAt, doneAt: performance.now(), ...(opts ? { opts } : {}) };
    this.writes.push(w);
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve(w);
  }
  nextWrite(): Promise<Write> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

/**
 * `nft -f -` of `text` with the environment the session gives nft (huge-page
 * malloc: it halves nft's page faults on big inputs), so that the floor and
 * the mode differ only in what the mode adds.
 */
function nftAlone(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ...SESSION_ENV } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft -f - exited with ${code}: ${stderr.slice(0, 500)}`))));
    child.stdin.end(text);
  });
}

/** `collectGarbage`: the agent's full collection (tuneAgentHeap), run by the nftables session as the agent runs it. */
export function makeSubject(
  name: ModeName,
  opts: { readonly collectGarbage?: (() => void) | undefined; readonly generation?: NftGeneration | undefined } = {},
): Subject {
  const exec = createExecaRunner();
  const rec = new Recorder();
  const deletions: Write[] = [];
  const common = { writes: rec.writes, deletions, nextWrite: () => rec.nextWrite(), keepTexts: () => void (rec.keepTexts = true) };
  if (name === 'iptables') {
    const ipt = createIptables({ family: 'IPv4', backend: 'nft', runner: exec, timeoutMs: 600_000 });
    const recording = {
      family: ipt.family,
      save: (t?: readonly string[]) => ipt.save(t),
      restore: async (text: string, opts: RestoreOptions) => {
        const t0 = performance.now();
        await ipt.restore(text, opts);
        rec.record(text, t0, opts);
      },
    };
    const mode = new IptablesMode(
      { iptables: new Map([['IPv4', recording]]), render: { ...DEFAULT_RENDER_OPTIONS, detectLocal: DETECT_LOCAL }, batchChains: NFT_BATCH_CHAINS },
      { clock: preciseClock, logger: silentLogger() },
    );
    return {
      ...common,
      mode,
      main: (ws) => ws,
      floor: async (ws) => {
        for (const w of ws) await ipt.restore(w.text, w.opts!);
      },
      floorSession: null,
      readdDeleted: async () => {},
      close: () => mode.close(),
    };
  }
  const channels = nftChannels(exec, opts.collectGarbage ? { collect: opts.collectGarbage } : {});
  const viaSession = channels.nft;
  // The mode's nft (Nft through the session), with every transaction recorded once it has been applied.
  const nft = {
    run: async (text: string) => {
      const t0 = performance.now();
      await viaSession.run(text);
      rec.record(text, t0);
    },
    check: (text: string) => viaSession.check(text),
    list: (family: 'ip' | 'ip6') => viaSession.list(family),
    listNames: (family: 'ip' | 'ip6', o?: ListNamesOptions) => viaSession.listNames(family, o),
    deleteTable: (family: 'ip' | 'ip6') => viaSession.deleteTable(family),
    counters: (family: 'ip' | 'ip6', o?: CounterOptions) => viaSession.counters(family, o),
  };
  // The stale-chain deletions, beside the syncs as in the agent, recorded apart: they carry no event's rules.
  const cleanupNft = {
    run: async (text: string) => {
      const t0 = performance.now();
      await channels.cleanupNft.run(text);
      deletions.push({ text: '', startedAt: t0, doneAt: performance.now() });
    },
  };
  const mode = new NftablesMode(
    {
      families: ['IPv4'],
      render: {
        masqueradeBit: 14,
        masqueradeAll: false,
        detectLocal: DETECT_LOCAL,
        nodePortAddresses: [],
        ...(opts.generation ? { generation: opts.generation } : {}),
      },
    },
    { nft, cleanupNft, clock: preciseClock, logger: silentLogger(), closeNft: () => channels.close() },
  );
  return {
    ...common,
    mode,
    main: (ws) => ws.slice(0, 1),
    floor: async (ws) => {
      for (const w of ws) await nftAlone(w.text);
    },
    floorSession: async (ws) => {
      for (const w of ws) await viaSession.run(w.text);
    },
    readdDeleted: async (ws) => {
      const text = readdText(ws);
      if (text !== '') await viaSession.run(text);
    },
    close: () => mode.close(),
  };
}
