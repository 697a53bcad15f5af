/**
 * The flow table in nftables mode through the pure pipeline: render each
 * scenario's table, apply it as a full sync to the fake nft, read it back as
 * `nft -j list` would show it, and trace each packet, with upstream's
 * generation A and B rulesets. The same scenarios run in the kernel in
 * nft-flows.e2e.test.ts and nft-flows-generation-b.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FakeNft } from '../nftables/fake-nft.ts';
import { traceNft } from '../nftables/trace.ts';
import { NODE1, NODE1_6, NODE1_SECONDARY, NODE1_SECONDARY_6, podByIP, TARGET_PORT } from './flow-cases.case.ts';
import { sourceInfo } from './flow-runner.ts';
import { NFT_DIFFERENCES, nftFlowScenarios, type NftFlowCase } from './nft-flow-cases.case.ts';
import { nftDesiredFor } from './nft-flow-runner.ts';

const LOCAL_ADDRESSES = [NODE1, NODE1_SECONDARY, '10.244.1.1', NODE1_6, NODE1_SECONDARY_6, 'fd00:10:244:1::1'];

// Generation A, and upstream's v1.36+ generation B (numgen map DNAT, inline mark, hairpin-connections), as the kernel
// runs both (nft-flows.e2e.test.ts, nft-flows-generation-b.e2e.test.ts): every flow must give the same answer.
const RUNS = (['A', 'B'] as const).flatMap((generation) => nftFlowScenarios().map((scenario) => ({ generation, scenario })));

for (const { generation, scenario } of RUNS) {
  describe(`nftables packet flows through the tracer, generation ${generation}: ${scenario.name}`, async () => {
    const family = scenario.family ?? 'IPv4';
    const desired = nftDesiredFor(scenario, { generation });
    const fake = new FakeNft();
    await fake.run(desired.text);
    const live = (await fake.list(family === 'IPv4' ? 'ip' : 'ip6'))!;

    it('renders without problems', () => expect(desired.problems).toEqual([]));

    for (const flow of scenario.flows) {
      it.skipIf(flow.skipTrace !== undefined)(flow.name, () => {
        const src = sourceInfo(flow.from, family);
        const r = traceNft(
          live,
          {
            src: src.ip,
            dst: flow.to,
            protocol: flow.proto ?? 'TCP',
            dport: flow.port,
            origin: src.origin,
            ...(src.inInterface ? { inInterface: src.inInterface } : {}),
          },
          { localAddresses: LOCAL_ADDRESSES },
        );
        check(flow, r);
      });
    }
  });
}

describe('the nftables differences table', () => {
  it('gives a reason for every difference', () => {
    for (const flows of Object.values(NFT_DIFFERENCES)) for (const d of Object.values(flows)) expect(d.reason.length).toBeGreaterThan(20);
  });
});

function check(flow: NftFlowCase, r: ReturnType<typeof traceNft>): void {
  const why = r.branches.map((b) => `${b.verdict} ${b.dnat ? `${b.dnat.ip}:${b.dnat.port}` : '-'} masq=${b.masquerade} (${b.end})`).join('; ');
  expect(r.warnings, why).toEqual([]);
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
  // Every endpoint is reached with the same probability (numgen), unless affinity pins it.
  if (!flow.sticky) for (const b of r.branches.filter((x) => x.dnat)) expect(b.probability).toBeCloseTo(1 / flow.expect.length, 6);
  if (flow.masq !== undefined) expect(r.masquerade, why).toBe(flow.masq);
}
