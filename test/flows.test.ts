/**
 * The flow table (test/flow-cases.case.ts) through the pure pipeline: render
 * exactly as `kube-proxy-ts render` does, load it into the fake iptables
 * (kernel restore semantics), read it back as iptables-save text, and trace
 * each packet. Fast and rootless; the same table runs in the kernel in
 * flows.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FakeIptables } from '../iptables/fake-iptables.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { trace } from '../iptables/trace.ts';
import { NODE1, NODE1_6, NODE1_SECONDARY, podByIP, SCENARIOS, TARGET_PORT, type FlowCase } from './flow-cases.case.ts';
import { desiredFor, sourceInfo } from './flow-runner.ts';

const LOCAL_ADDRESSES = [NODE1, NODE1_SECONDARY, '10.244.1.1', NODE1_6, 'fd00:10:244:1::1'];

for (const scenario of SCENARIOS) {
  describe(`packet flows through the tracer: ${scenario.name}`, async () => {
    const desired = desiredFor(scenario);
    const render = desired.renders.find((r) => r.ruleset.family === (scenario.family ?? 'IPv4'))!;
    const fake = new FakeIptables({ family: render.ruleset.family });
    await fake.restore(toRestoreText(render.ruleset, { builtins: 'insert' }), { noflush: true, counters: false });
    const live = parseSave(await fake.save(), render.ruleset.family);

    it('renders without problems', () => expect(desired.problems).toEqual([]));

    for (const flow of scenario.flows) {
      it.skipIf(flow.skipTrace !== undefined)(flow.name, () =>
        check(flow, trace(live, packet(flow, render.ruleset.family), { localAddresses: LOCAL_ADDRESSES })),
      );
    }
  });
}

function packet(flow: FlowCase, family: 'IPv4' | 'IPv6') {
  const src = sourceInfo(flow.from, family);
  return {
    src: src.ip,
    dst: flow.to,
    protocol: flow.proto ?? 'TCP',
    dport: flow.port,
    origin: src.origin,
    ...(src.inInterface ? { inInterface: src.inInterface } : {}),
  } as const;
}

function check(flow: FlowCase, r: ReturnType<typeof trace>): void {
  const why = r.branches.map((b) => `${b.verdict} ${b.dnat ? `${b.dnat.ip}:${b.dnat.port}` : '-'} masq=${b.masquerade}`).join('; ');
  if (flow.expect === 'REJECT' || flow.expect === 'DROP') {
    expect(r.verdict, why).toBe(flow.expect);
    expect(r.endpoints, why).toEqual([]);
    return;
  }
  if (flow.expect === 'NONE') {
    expect(r.endpoints, why).toEqual([]);
    expect(r.verdict, why).toBe('ACCEPT');
    return;
  }
  expect(r.verdict, why).toBe('ACCEPT');
  const pods = r.endpoints.map((e) => {
    const [ip, port] = [e.slice(0, e.lastIndexOf(':')).replace(/^\[|\]$/g, ''), Number(e.slice(e.lastIndexOf(':') + 1))];
    expect(port).toBe(TARGET_PORT);
    return podByIP(ip);
  });
  expect(pods.sort(), why).toEqual([...flow.expect].sort());
  // Every endpoint is reachable with the probability the ladder promises (uniform), unless affinity pins it.
  const p = r.branches.filter((b) => b.dnat).map((b) => b.probability);
  if (!flow.sticky) for (const x of p) expect(x).toBeCloseTo(1 / flow.expect.length, 6);
  if (flow.masq !== undefined) expect(r.masquerade, why).toBe(flow.masq);
}
