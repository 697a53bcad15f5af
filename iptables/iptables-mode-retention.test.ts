/**
 * What IptablesMode keeps between syncs: only the state the next sync and
 * `inspect` need. The /debug/rules record keeps a function that builds the
 * applied rules' text when asked; a closure made inside the sync keeps that
 * sync's whole scope alive, and with it the plan and its restore texts
 * (~17 MB after a full sync at 10,000 services), until the next sync. The
 * closure's scopes are read through the inspector, as DevTools shows them.
 */
import { Session } from 'node:inspector/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../proxier/log.ts';
import type { IPFamily } from '../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { FakeIptables } from './fake-iptables.ts';
import type { Iptables } from './iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { DEFAULT_RENDER_OPTIONS } from './render.ts';

const session = new Session();
session.connect();
afterAll(() => session.disconnect());

interface RemoteProperty {
  readonly name: string;
  readonly value?: { readonly type: string; readonly objectId?: string; readonly description?: string };
}

/** The variables a function's closure scopes (not the module's, not the global one) hold, by name. */
async function closureVariables(fn: () => unknown): Promise<string[]> {
  const slot = Symbol.for('kube-proxy-ts.retention-test');
  (globalThis as Record<symbol, unknown>)[slot] = fn;
  try {
    const { result } = await session.post('Runtime.evaluate', { expression: `globalThis[Symbol.for('kube-proxy-ts.retention-test')]` });
    const { internalProperties } = await session.post('Runtime.getProperties', { objectId: result.objectId!, ownProperties: true });
    const scopes = (internalProperties as RemoteProperty[]).find((p) => p.name === '[[Scopes]]');
    const list = await session.post('Runtime.getProperties', { objectId: scopes!.value!.objectId!, ownProperties: true });
    const names: string[] = [];
    for (const scope of list.result as RemoteProperty[]) {
      if (!scope.value?.description?.startsWith('Closure')) continue;
      const vars = await session.post('Runtime.getProperties', { objectId: scope.value.objectId!, ownProperties: true });
      names.push(...(vars.result as RemoteProperty[]).map((v) => v.name));
    }
    return names.sort();
  } finally {
    delete (globalThis as Record<symbol, unknown>)[slot];
  }
}

const services = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    portState(servicePort({ key: `ns/svc${i}:p80`, namespace: 'ns', name: `svc${i}`, clusterIP: `172.30.0.${i + 1}` }), [
      endpoint(`10.0.${i}.1`),
      endpoint(`10.0.${i}.2`),
    ]),
  );

describe('IptablesMode retention', () => {
  it('keeps only the applied render for /debug/rules, not the sync that applied it (plan, restore texts)', async () => {
    const fake = new FakeIptables({ family: 'IPv4' });
    const mode = new IptablesMode(
      { iptables: new Map<IPFamily, Iptables>([['IPv4', fake]]), render: DEFAULT_RENDER_OPTIONS, batchChains: 4 },
      { clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined }, logger: silentLogger() },
    );
    const full = snapshotOf(services(5));
    await mode.sync(full, { periodic: false, previous: null });
    const text = mode.inspect.rules()[0]!.applied!.text;
    expect(await closureVariables(text)).toEqual(['rendered']);
    // The record still builds the applied rules' text when asked.
    expect(text()).toContain(':KUBE-SERVICES - [0:0]');
    const partial = snapshotOf(services(4));
    await mode.sync(partial, { periodic: false, previous: full });
    expect(await closureVariables(mode.inspect.rules()[0]!.applied!.text)).toEqual(['rendered']);
  });
});
