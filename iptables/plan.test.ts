import { describe, expect, it } from 'vitest';
import type { ServicePortState } from '../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { serviceChainNames } from './chain-names.ts';
import { parseRestore } from './parse.ts';
import { planSync } from './plan.ts';
import { DEFAULT_RENDER_OPTIONS, RenderCache, renderRuleset } from './render.ts';

const sp = (i: number) => servicePort({ key: `ns/svc${i}:p80`, namespace: 'ns', name: `svc${i}`, clusterIP: `172.30.0.${i}` });
const ep = (ip: string) => endpoint(ip);
const st = portState;
const snap = (services: ServicePortState[]) => snapshotOf(services);

describe('planSync', () => {
  const cache = new RenderCache();
  const s1 = st(sp(1), [ep('10.0.0.1')]);
  const s2 = st(sp(2), [ep('10.0.0.2'), ep('10.0.0.3')]);
  const r1 = renderRuleset(snap([s1, s2]), DEFAULT_RENDER_OPTIONS, cache);
  const first = planSync({
    topLevel: r1.topLevel,
    perService: r1.perService,
    applied: null,
    existingChains: new Map([['nat', ['KUBE-SERVICES', 'KUBE-SEP-OLDOLDOLDOLDOLDO', serviceChainNames(sp(1)).svc, 'OTHER-CHAIN']]]),
  });

  const applied = first.commit(null);
  /** A partial plan against what the first (full) sync applied; not committed, so each test starts from it. */
  const plan = (states: ServicePortState[]) => {
    const r = renderRuleset(snap(states), DEFAULT_RENDER_OPTIONS, cache);
    return planSync({ topLevel: r.topLevel, perService: r.perService, applied });
  };

  it('writes everything on a full sync and deletes stale service chains found in the kernel', () => {
    expect(first.full).toBe(true);
    expect(first.writtenChains.get('nat')).toBe(4 + 2 + 3); // fixed + 2 SVC + 3 SEP
    expect(first.deletedChains).toEqual(['KUBE-SEP-OLDOLDOLDOLDOLDO']); // not ours: OTHER-CHAIN kept
    expect(first.text).toMatch(/:KUBE-SEP-OLDOLDOLDOLDOLDO - \[0:0\]\n[^]*-X KUBE-SEP-OLDOLDOLDOLDOLDO\nCOMMIT\n$/);
  });

  it('rewrites only the changed service chains on a partial sync', () => {
    const s2b = st(sp(2), [ep('10.0.0.2')]);
    const second = plan([s1, s2b]);
    expect(second.full).toBe(false);
    // Only svc2's SVC chain changed; its removed endpoint's SEP chain is deleted; KUBE-SERVICES is untouched.
    expect(second.text).not.toContain('*filter');
    const natDecls = parseRestore(second.text)
      .tables.find((t) => t.name === 'nat')!
      .declarations.map((d) => d.chain);
    expect(natDecls).toEqual([serviceChainNames(sp(2)).svc, expect.stringMatching(/^KUBE-SEP-/)]);
    expect(second.deletedChains).toHaveLength(1);
    expect(second.text).toMatch(/-X KUBE-SEP-\w+\nCOMMIT\n$/);
  });

  it('makes each batch as it is iterated: the batches are the text in order, bytes counted without building them', () => {
    const states = Array.from({ length: 6 }, (_, i) => st(sp(10 + i), [ep(`10.0.1.${i}`)]));
    const r = renderRuleset(snap(states), DEFAULT_RENDER_OPTIONS, new RenderCache());
    const batched = planSync({ topLevel: r.topLevel, perService: r.perService, applied: null, batchChains: 4 });
    const texts = [...batched.batches];
    expect(texts.length).toBe(batched.batches.length);
    expect(texts.length).toBeGreaterThan(2);
    expect(texts.join('')).toBe(batched.text);
    expect(batched.bytes).toBe(batched.text.length);
    expect([...batched.batches][0]).not.toBe(''); // iterable again, each text made afresh
    expect(plan([s1, s2]).batches.length).toBe(0); // nothing to write: no empty input
  });

  it('writes nothing at all when nothing changed', () => {
    const again = plan([s1, s2]);
    expect(again.writtenChains.get('nat')).toBe(0);
    expect(again.text).toBe('');
  });

  it('commits a partial plan in place: the next identical sync writes nothing', () => {
    const state = first.commit(null);
    const s2c = st(sp(2), [ep('10.0.0.7')]);
    const r = renderRuleset(snap([s1, s2c]), DEFAULT_RENDER_OPTIONS, cache);
    const p = planSync({ topLevel: r.topLevel, perService: r.perService, applied: state });
    expect(p.deletedChains).toHaveLength(2);
    expect(p.commit(state)).toBe(state);
    const r2 = renderRuleset(snap([s1, s2c]), DEFAULT_RENDER_OPTIONS, cache);
    expect(planSync({ topLevel: r2.topLevel, perService: r2.perService, applied: state }).text).toBe('');
    // Removing a service deletes all its chains.
    const r3 = renderRuleset(snap([s1]), DEFAULT_RENDER_OPTIONS, cache);
    const gone = planSync({ topLevel: r3.topLevel, perService: r3.perService, applied: state });
    expect(gone.deletedChains).toEqual([serviceChainNames(sp(2)).svc, expect.stringMatching(/^KUBE-SEP-/)]);
  });

  it('rewrites KUBE-SERVICES when a service appears', () => {
    const s3 = st(sp(3), [ep('10.0.0.9')]);
    const third = plan([s1, s2, s3]);
    expect(third.text).toContain(':KUBE-SERVICES - [0:0]');
    expect(third.text).toContain('-d 172.30.0.3 --dport 80');
  });
});
