/**
 * The syncs' side of generation B (upstream v1.36+, AustinAbro321/kubernetes
 * proxier.go @ 129058fc): the hairpin-connections elements of local endpoints
 * that go are deleted by the stale-cleanup transaction, not by the event's
 * (upstream deletes them in the sync's transaction, hairpinConnections.
 * cleanupLeftoverKeys, and any `delete` makes nft 1.0.6 load its whole cache);
 * and a table written by the other generation ends as this generation's render.
 */
import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { ManualClock } from '../proxier/clock.ts';
import { silentLogger } from '../proxier/log.ts';
import type { IPFamily } from '../proxier/types.ts';
import { NftablesMode, type NftTables } from './nftables-mode.ts';
import { planFullSync } from './full-sync.ts';
import { planPartialSync } from './partial-sync.ts';
import { NftRenderCache, renderNftables, type NftRenderOptions } from './render.ts';
import type { AppliedState, SyncPlan } from './sync-state.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const B = (family: IPFamily = 'IPv4', over: Partial<NftRenderOptions> = {}) => upstreamOptions(family, { generation: 'B', ...over });
const svc = (name: string, ip: string) => makeService('ns1', name, { clusterIP: ip, ports: [{ name: 'p80', port: 80 }] });
/** Endpoints of `name`: `local` on this node, `remote` elsewhere, all on port 80. */
const eps = (name: string, local: string[], remote: string[] = []) =>
  makeEndpointSlice('ns1', name, `${name}-1`, {
    endpoints: [...local.map((ip) => ({ ip, nodeName: TEST_NODE })), ...remote.map((ip) => ({ ip, nodeName: 'other-node' }))],
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  });

const HAIRPIN_1 = '10.0.1.1 . 10.0.1.1 . tcp . 80';
const deletes = (text: string) => text.split('\n').filter((l) => l.startsWith('delete'));
const hairpinDeletes = (text: string) => deletes(text).filter((l) => l.includes('hairpin-connections'));
const DELETE_1 = `delete element ip kube-proxy hairpin-connections { ${HAIRPIN_1} }`;

/** Plans syncs of B renders (one render cache), the first full, the next partial unless asked; keeps the state. */
function driver(options: NftRenderOptions = B()) {
  const cache = new NftRenderCache();
  let applied: AppliedState | null = null;
  return {
    get applied() {
      return applied!;
    },
    sync(services: unknown[], slices: unknown[], now: number, full = false): SyncPlan {
      const render = renderNftables(upstreamSnapshot('IPv4', services, slices), options, cache);
      const plan =
        applied === null || full
          ? planFullSync(render, { now, live: null, recreateBaseChains: applied === null, previous: applied })
          : planPartialSync(render, applied, now);
      applied = plan.next;
      return plan;
    },
  };
}

describe('generation B: a local endpoint that goes leaves its hairpin-connections element to the stale cleanup', () => {
  it('deletes nothing in the event transaction; the cleanup a second later deletes the element', () => {
    const d = driver();
    d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'], ['10.0.2.1'])], 0);
    const gone = d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 100);
    expect(gone.text).toContain('dnat ip addr . port to numgen random mod 1 map { 0 : 10.0.2.1 . 80 }');
    expect(deletes(gone.text)).toEqual([]);
    expect(gone.cleanup).toBe('');
    const quiet = d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 1100);
    expect(quiet.text).toBe('');
    expect(deletes(quiet.cleanup)).toEqual([DELETE_1]);
    // Deleted once: the next quiet sync has nothing left to delete.
    expect(d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 2100).cleanup).toBe('');
  });

  it('keeps an element wanted again before the cleanup (the add is harmless: the kernel still has it)', () => {
    const d = driver();
    d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'], ['10.0.2.1'])], 0);
    d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 100);
    const back = d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'], ['10.0.2.1'])], 500);
    expect(back.text).toContain(HAIRPIN_1);
    expect(deletes(back.text)).toEqual([]);
    expect(d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'], ['10.0.2.1'])], 5000).cleanup).toBe('');
  });

  it('lets a full sync in between settle it: the set is flushed and refilled, nothing is left to delete', () => {
    const d = driver();
    d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'], ['10.0.2.1'])], 0);
    d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 100);
    const full = d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 500, true);
    expect(full.text).toContain('flush set ip kube-proxy hairpin-connections');
    expect(full.text).not.toContain(HAIRPIN_1);
    expect(d.sync([svc('a', '172.30.0.41')], [eps('a', [], ['10.0.2.1'])], 5000).cleanup).toBe('');
  });

  it('waits for a burst, as stale chains do: a sync that writes rules deletes elements only once one has waited 10 s', () => {
    const d = driver();
    d.sync([svc('a', '172.30.0.41'), svc('b', '172.30.0.42')], [eps('a', ['10.0.1.1'], ['10.0.2.1']), eps('b', ['10.0.1.2'])], 0);
    d.sync([svc('a', '172.30.0.41'), svc('b', '172.30.0.42')], [eps('a', [], ['10.0.2.1']), eps('b', ['10.0.1.2'])], 100);
    const busy = d.sync([svc('a', '172.30.0.41'), svc('b', '172.30.0.42')], [eps('a', [], ['10.0.2.1']), eps('b', ['10.0.1.2', '10.0.1.3'])], 2000);
    expect(busy.cleanup).toBe('');
    const later = d.sync([svc('a', '172.30.0.41'), svc('b', '172.30.0.42')], [eps('a', [], ['10.0.2.1']), eps('b', ['10.0.1.3'])], 10_100);
    expect(deletes(later.text)).toEqual([]);
    expect(deletes(later.cleanup)).toEqual([DELETE_1]);
  });
});

describe('generation B: hairpin-connections keys shared by service ports (upstream nftElementStorage reference counts)', () => {
  // Two services selecting the same pod: one key `10.0.1.1 . 10.0.1.1 . tcp . 80` written by both.
  const both = [svc('a', '172.30.0.41'), svc('b', '172.30.0.42')];
  const bothSlices = [eps('a', ['10.0.1.1']), eps('b', ['10.0.1.1'])];

  it('keeps the element while the other service still selects the endpoint; deletes it in the cleanup once neither does', () => {
    const d = driver();
    d.sync(both, bothSlices, 0);
    expect(d.applied.elements.get('hairpin-connections')!.get(HAIRPIN_1)!.refs).toBe(2);
    const bGone = d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'])], 100);
    expect(bGone.text).not.toContain('hairpin-connections');
    expect(d.applied.elements.get('hairpin-connections')!.get(HAIRPIN_1)!.refs).toBe(1);
    expect(d.sync([svc('a', '172.30.0.41')], [eps('a', ['10.0.1.1'])], 5000).cleanup).not.toContain('hairpin-connections');
    d.sync([svc('a', '172.30.0.41')], [eps('a', [])], 6000);
    expect(d.applied.elements.get('hairpin-connections')!.has(HAIRPIN_1)).toBe(false);
    expect(hairpinDeletes(d.sync([svc('a', '172.30.0.41')], [eps('a', [])], 7000).cleanup)).toEqual([DELETE_1]);
  });

  it('counts a key back from zero when a service selects it again before the cleanup, and deletes it only when that one goes too', () => {
    const d = driver();
    d.sync(both, bothSlices, 0);
    d.sync(both, [eps('a', []), eps('b', [])], 100); // neither: deferred
    const again = d.sync(both, [eps('a', []), eps('b', ['10.0.1.1'])], 300);
    expect(again.text).toContain(HAIRPIN_1);
    expect(d.applied.elements.get('hairpin-connections')!.get(HAIRPIN_1)!.refs).toBe(1);
    expect(hairpinDeletes(d.sync(both, [eps('a', []), eps('b', ['10.0.1.1'])], 5000).cleanup)).toEqual([]);
    d.sync(both, [eps('a', []), eps('b', [])], 6000);
    expect(hairpinDeletes(d.sync(both, [eps('a', []), eps('b', [])], 7000).cleanup)).toEqual([DELETE_1]);
  });
});

/** An nft that records what it is given and lists no table (the first sync cold-starts); the kernel is not modelled. */
function recordingNft(): NftTables & { readonly texts: string[] } {
  const texts: string[] = [];
  return {
    texts,
    run: async (text) => void texts.push(text),
    check: async () => undefined,
    list: async () => null,
    deleteTable: async () => false,
    counters: async () => null,
    listNames: async () => null,
  };
}

describe('NftablesMode, generation B: the stale cleanup runs beside the syncs', () => {
  it('holds a sync that adds back an element the running cleanup deletes until that cleanup has ended (else it would delete it after)', async () => {
    const nft = recordingNft();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const cleanups: string[] = [];
    const cleanupNft = { run: async (text: string) => (cleanups.push(text), gate) };
    const clock = new ManualClock(1_000_000);
    const mode = new NftablesMode({ families: ['IPv4'], render: B() }, { nft, cleanupNft, clock, logger: silentLogger() });
    const sync = (local: string[]) =>
      mode.sync(upstreamSnapshot('IPv4', [svc('a', '172.30.0.41')], [eps('a', local, ['10.0.2.1'])]), { periodic: false, previous: null });
    await sync(['10.0.1.1']);
    clock.advance(100);
    await sync([]);
    clock.advance(1000);
    await sync([]); // nothing to write: the cleanup deletes the element, held at the gate
    expect(cleanups).toEqual([`${DELETE_1}\n`]);
    const runs = nft.texts.length;
    let done = false;
    const back = sync(['10.0.1.1']).then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(done).toBe(false);
    expect(nft.texts.length).toBe(runs);
    open();
    await back;
    expect(nft.texts.slice(runs).join('')).toContain(HAIRPIN_1);
    await mode.close();
  });
});

describe('switching generations on a live table (A is upstream v1.33-1.35, B v1.36+)', () => {
  const services = [svc('a', '172.30.0.41')];
  const slices = [eps('a', ['10.0.1.1'], ['10.0.2.1'])];
  const A = (family: IPFamily = 'IPv4') => upstreamOptions(family, { generation: 'A' });
  const render = (options: NftRenderOptions) => renderNftables(upstreamSnapshot('IPv4', services, slices), options);
  /** The names a listing of the table `plan` wrote would show. */
  const namesOf = (r: ReturnType<typeof render>) => ({
    chains: [...r.fixed.chains, ...r.services.flatMap((s) => s.chains)].map((c) => c.name),
    sets: r.fixed.sets.map((s) => ({ name: s.name, kind: s.kind })),
  });

  it('makes a partial sync across a generation change a full one, both ways', () => {
    const a = planFullSync(render(A()), { now: 0, live: null, recreateBaseChains: true });
    expect(planPartialSync(render(B()), a.next, 100).full).toBe(true);
    const b = planFullSync(render(B()), { now: 0, live: null, recreateBaseChains: true });
    expect(planPartialSync(render(A()), b.next, 100).full).toBe(true);
  });

  it("B over A's table flushes mark-for-masquerade with the endpoint chains that jump to it, and the cleanup deletes them", () => {
    const a = render(A());
    const full = planFullSync(render(B()), { now: 0, live: namesOf(a), recreateBaseChains: true });
    expect(full.text).toContain('flush chain ip kube-proxy mark-for-masquerade');
    const endpointChains = a.services.flatMap((s) => s.chains).filter((c) => c.name.startsWith('endpoint-'));
    expect(endpointChains).toHaveLength(2);
    expect([...full.next.stale.keys()].sort()).toEqual([...endpointChains.map((c) => c.name), 'mark-for-masquerade'].sort());
    const quiet = planPartialSync(render(B()), full.next, 1000);
    expect(quiet.cleanupChains).toContain('mark-for-masquerade');
    expect(quiet.cleanup).toContain('delete chain ip kube-proxy mark-for-masquerade');
  });

  it('A back over B within the second keeps mark-for-masquerade, which B had left to the cleanup', () => {
    const a = render(A());
    const b = planFullSync(render(B()), { now: 0, live: namesOf(a), recreateBaseChains: true });
    const back = planPartialSync(render(A()), b.next, 500);
    expect(back.full).toBe(true);
    expect([...back.next.stale.keys()]).not.toContain('mark-for-masquerade');
    expect(back.cleanupChains).not.toContain('mark-for-masquerade');
    const later = planPartialSync(render(A()), back.next, 5000);
    expect(later.cleanup).not.toContain('mark-for-masquerade');
    expect(back.text).toContain('add chain ip kube-proxy mark-for-masquerade { mark set mark or 0x00004000 ; }');
  });

  it('turns a partial sync across generations into a full one that removes what the applied state wrote of the other generation', () => {
    const a = planFullSync(render(A()), { now: 0, live: null, recreateBaseChains: true });
    const b = planPartialSync(render(B()), a.next, 100);
    const endpointChains = render(A())
      .services.flatMap((s) => s.chains)
      .filter((c) => c.name.startsWith('endpoint-'))
      .map((c) => c.name);
    for (const name of [...endpointChains, 'mark-for-masquerade']) expect(b.text).toContain(`flush chain ip kube-proxy ${name}\n`);
    expect([...b.next.stale.keys()].sort()).toEqual([...endpointChains, 'mark-for-masquerade'].sort());
    expect(planPartialSync(render(A()), b.next, 200).text).toContain('delete set ip kube-proxy hairpin-connections');
  });

  it("A over B's table deletes hairpin-connections (nothing names it once masquerading is rewritten)", () => {
    const full = planFullSync(render(A()), { now: 0, live: namesOf(render(B())), recreateBaseChains: true });
    expect(full.text).toContain('delete set ip kube-proxy hairpin-connections');
  });
});
