/**
 * A sync driver over a FakeNft or the real nft, for the partial-sync tests:
 * renders each state with one render cache (unchanged service ports keep
 * their ServicePortState object, as the proxier hands them out), plans a full
 * sync first and partial syncs after, runs the main transactions and then the cleanup
 * and keeps the applied state, with the clock passed in.
 */
import type { ServicePortState, Snapshot } from '../proxier/types.ts';
import { planFullSync } from './full-sync.ts';
import type { NftApi } from './nft.ts';
import { planPartialSync } from './partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRender, type NftRenderOptions } from './render.ts';
import type { AppliedState, SyncPlan } from './sync-state.ts';

export class SyncDriver {
  private readonly cache = new NftRenderCache();
  private states = new Map<string, ServicePortState>();
  applied: AppliedState | null = null;
  last: SyncPlan | null = null;
  lastRender: NftRender | null = null;
  private readonly nft: NftApi;
  private readonly options: NftRenderOptions;

  constructor(nft: NftApi, options: NftRenderOptions) {
    this.nft = nft;
    this.options = options;
  }

  /** Reuses the previous state object of every service port whose content did not change. */
  private stable(snapshot: Snapshot): Snapshot {
    const next = new Map<string, ServicePortState>();
    const services = snapshot.services.map((s) => {
      const key = `${s.service.key}/${s.service.protocol}`;
      const prev = this.states.get(key);
      const kept = prev && JSON.stringify(prev) === JSON.stringify(s) ? prev : s;
      next.set(key, kept);
      return kept;
    });
    this.states = next;
    return { ...snapshot, services };
  }

  async sync(snapshot: Snapshot, now: number, full = false): Promise<SyncPlan> {
    const render = renderNftables(this.stable(snapshot), this.options, this.cache);
    const plan =
      this.applied === null || full
        ? planFullSync(render, {
            now,
            live: this.applied === null ? null : await this.liveNames(render),
            recreateBaseChains: this.applied === null,
            previous: this.applied,
          })
        : planPartialSync(render, this.applied, now);
    await this.nft.run(plan.text);
    for (const t of plan.more) await this.nft.run(t);
    if (plan.cleanup) await this.nft.run(plan.cleanup);
    this.applied = plan.next;
    this.last = plan;
    this.lastRender = render;
    return plan;
  }

  private async liveNames(render: NftRender) {
    const t = await this.nft.list(render.family);
    return t === null
      ? null
      : { chains: t.chains.map((c) => c.name), sets: t.sets.map((s) => ({ name: s.name, kind: s.kind })), counters: t.counters ?? [] };
  }
}
