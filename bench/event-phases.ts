/**
 * The agent's event path (Proxier, sync runner with --iptables-min-sync-period
 * 0, IptablesMode, iptables-restore) with every step between an informer event
 * and its rules in the kernel timed from outside the core: the runner's timer
 * through the clock it is given, the dirty services' rebuild through the state
 * builder, the snapshot's hand-over through the mode's sync, render and plan
 * through IptablesModeDeps.onPhase, the restore through the Iptables it writes
 * with. Used by bench/iptables-sync.ts and bench/event-to-rules.ts.
 */
import { performance } from 'node:perf_hooks';
import { IptablesMode, NFT_BATCH_CHAINS } from '../iptables/iptables-mode.ts';
import type { Iptables, IptablesBackend } from '../iptables/iptables.ts';
import type { RenderOptions } from '../iptables/render.ts';
import type { Clock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import type { ProxyMode } from '../proxier/mode.ts';
import { Proxier, type ProxierEvent, type StateBuilder } from '../proxier/proxier.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import { realClock } from '../src/system/clock.ts';

/** The phases of one event, in order; they add up to `total`. */
export const PHASES = ['event + runner timer', 'state rebuild', 'snapshot', 'render', 'plan + restore text', 'restore'] as const;
export type Phase = (typeof PHASES)[number] | 'total';

interface Marks {
  sent: number;
  tick: number;
  rebuild: number;
  syncStart: number;
  rendered: number;
  planned: number;
  restoreStart: number;
  restoreEnd: number;
}

const now = (): number => performance.now();
const fresh = (): Marks => ({ sent: 0, tick: 0, rebuild: 0, syncStart: 0, rendered: 0, planned: 0, restoreStart: 0, restoreEnd: 0 });

export class EventPath {
  readonly proxier: Proxier;
  /** The last restore input the path wrote (an event's update, once events flow). */
  lastText = '';
  private marks = fresh();
  private restores = 0;

  constructor(ipt: Iptables, backend: IptablesBackend, nodeName: string, render: RenderOptions) {
    const timed: Iptables = {
      family: ipt.family,
      save: (t, o) => ipt.save(t, o),
      restore: async (text, o) => {
        this.marks.restoreStart = now();
        await ipt.restore(text, o);
        this.marks.restoreEnd = now();
        this.lastText = text;
        this.restores++;
      },
    };
    const inner = new IptablesMode(
      { iptables: new Map([['IPv4', timed]]), render, batchChains: backend === 'nft' ? NFT_BATCH_CHAINS : 0 },
      {
        clock: { ...realClock, now },
        logger: silentLogger(),
        onPhase: (p) => (this.marks[p] = now()),
      },
    );
    const mode: ProxyMode = Object.assign(Object.create(inner) as ProxyMode, {
      sync: (snapshot: Parameters<ProxyMode['sync']>[0], o: Parameters<ProxyMode['sync']>[1]) => {
        this.marks.syncStart = now();
        return inner.sync(snapshot, o);
      },
    });
    const clock: Clock = {
      now: () => realClock.now(),
      setTimeout: (fn, ms) =>
        realClock.setTimeout(() => {
          this.marks.tick = now();
          fn();
        }, ms),
      clearTimeout: (h) => realClock.clearTimeout(h),
    };
    const base = stateBuilder(nodeName, { preferSameTrafficDistribution: true });
    const builder: StateBuilder = {
      node: (obj) => base.node(obj),
      service: (svc, slices, node, family) => {
        const t0 = now();
        const r = base.service(svc, slices, node, family);
        this.marks.rebuild += now() - t0;
        return r;
      },
    };
    this.proxier = new Proxier({ mode, builder, clock, minSyncPeriodMs: 0, syncPeriodMs: 3_600_000 });
  }

  /** Starts the proxier on the given objects and waits for its first (full) sync. */
  async load(events: readonly ProxierEvent[], timeoutMs = 600_000): Promise<void> {
    this.proxier.start();
    for (const e of events) this.proxier.onEvent(e);
    for (const k of ['Service', 'EndpointSlice', 'Node'] as const) this.proxier.onSynced(k);
    const deadline = now() + timeoutMs;
    while (this.restores === 0) {
      if (now() > deadline) throw new Error('the first sync did not finish in time');
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.proxier.idle();
  }

  /** Sends one event, waits until its restore has finished, and returns each phase's duration in ms. */
  async send(e: ProxierEvent, timeoutMs = 60_000): Promise<Record<Phase, number>> {
    this.marks = fresh();
    const before = this.restores;
    const m = this.marks;
    m.sent = now();
    this.proxier.onEvent(e);
    const deadline = m.sent + timeoutMs;
    while (this.restores === before) {
      if (now() > deadline) throw new Error(`no restore within ${timeoutMs} ms of an event`);
      await new Promise((r) => setImmediate(r));
    }
    await this.proxier.idle();
    return {
      'event + runner timer': m.tick - m.sent,
      'state rebuild': m.rebuild,
      snapshot: m.syncStart - m.tick - m.rebuild,
      render: m.rendered - m.syncStart,
      'plan + restore text': m.restoreStart - m.rendered,
      restore: m.restoreEnd - m.restoreStart,
      total: m.restoreEnd - m.sent,
    };
  }

  stop(): Promise<void> {
    return this.proxier.stop();
  }
}
