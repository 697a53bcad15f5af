/**
 * The nftables core driven as a ProxyMode, for bench/mode-figures.ts while
 * `--mode=nftables` (nftables/nftables-mode.ts, branch h-nft-mode) is not on
 * this branch yet. It follows the wiring that nftables/README.md lays out for
 * the mode: render with one NftRenderCache; `planColdStart` when
 * `listNames` finds no table, `planFullSync` (with the names) on full syncs,
 * `planPartialSync` otherwise; run `text`, `more`, then `cleanup`; keep
 * `next` only when all succeeded; any failure makes the next sync full.
 * IPv4 only, no conntrack, no monitor: what a sync costs, nothing more.
 */
import type { Clock } from '../proxier/clock.ts';
import { ApplyError, type ProxyMode, type SyncContext, type SyncFailure, type SyncReport } from '../proxier/mode.ts';
import type { Snapshot } from '../proxier/types.ts';
import { planColdStart } from '../nftables/cold-start.ts';
import { planFullSync, type LiveNames } from '../nftables/full-sync.ts';
import type { NftFamily } from '../nftables/model.ts';
import { planPartialSync } from '../nftables/partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRenderOptions } from '../nftables/render.ts';
import type { AppliedState, SyncPlan } from '../nftables/sync-state.ts';

/** What the mode needs of nft: transactions, and the names in the table (nftables/nft.ts' Nft has both). */
export interface NftChannel {
  run(text: string): Promise<void>;
  listNames(family: NftFamily): Promise<LiveNames | null>;
}

export class CoreNftMode implements ProxyMode {
  readonly name = 'nftables' as const;
  readonly families = ['IPv4'] as const;
  private readonly cache = new NftRenderCache();
  private applied: AppliedState | null = null;
  private needFull = true;
  private firstFull = true;

  private readonly nft: NftChannel;
  private readonly options: NftRenderOptions;
  private readonly clock: Clock;

  constructor(nft: NftChannel, options: NftRenderOptions, clock: Clock) {
    this.nft = nft;
    this.options = options;
    this.clock = clock;
  }

  async sync(snapshot: Snapshot, ctx: SyncContext): Promise<SyncReport> {
    const t0 = this.clock.now();
    const render = renderNftables(snapshot, this.options, this.cache);
    let plan: SyncPlan;
    if (this.applied === null || this.needFull || ctx.periodic) {
      const live = await this.nft.listNames('ip');
      plan =
        live === null ? planColdStart(render) : planFullSync(render, { now: t0, live, recreateBaseChains: this.firstFull, previous: this.applied });
    } else {
      plan = planPartialSync(render, this.applied, t0);
    }
    let bytes = 0;
    try {
      for (const text of [plan.text, ...plan.more]) {
        await this.nft.run(text);
        bytes += Buffer.byteLength(text);
      }
    } catch (err) {
      this.applied = null;
      this.needFull = true;
      throw new ApplyError('IPv4', plan.full, err);
    }
    this.applied = plan.next;
    this.needFull = false;
    if (plan.full) this.firstFull = false;
    const failures: SyncFailure[] = [];
    if (plan.cleanup !== '') {
      try {
        await this.nft.run(plan.cleanup);
      } catch (err) {
        this.needFull = true;
        failures.push({ stage: 'cleanup', message: err instanceof Error ? err.message : String(err) });
      }
    }
    return {
      family: 'IPv4',
      full: plan.full,
      durationMs: this.clock.now() - t0,
      objects: new Map(),
      written: new Map([['kube-proxy', plan.operations]]),
      bytes,
      noLocalEndpoints: null,
      conntrackDeleted: 0,
      failures,
    };
  }

  requestFullSync(): void {
    this.needFull = true;
  }

  monitor(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {}
}
