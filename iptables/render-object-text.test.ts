/**
 * Object text in the rendered rules: a Service's namespace, name and port
 * name reach almost every rule as comment text. Whatever they hold (quotes,
 * blanks, `|`, hundreds of bytes), every rule must parse as iptables parses
 * it, each comment must read back as the text the kernel keeps, and nothing
 * else of the rule may change. (The kernel itself: test/object-text.e2e.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { ServicePortState, Snapshot } from '../proxier/types.ts';
import { endpoint, nodeInfo, servicePort } from '../test/domain.ts';
import { renderPortals } from '../userspace/portal-rules.ts';
import { kernelComment } from './comment.ts';
import { diffRulesets } from './diff.ts';
import { FakeIptables } from './fake-iptables.ts';
import { parseSave } from './parse-save.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset } from './render.ts';
import { findOption, parseRuleWords, tokenizeRule } from './rule-words.ts';
import { type Ruleset } from './ruleset.ts';
import { toRestoreText } from './restore-text.ts';

const ODD_NAMES: readonly (readonly [string, string, string])[] = [
  ['ns1', 'quote"d', 'p80'],
  ['ns1', 'with space', 'p80'],
  ['ns1', 'with\ttab', 'p"80'],
  ['ns1', "back\\slash'n", ''],
  ['-ns', 'pi|pe', 'p|80'],
  ['ns1', 'x'.repeat(300), 'p80'],
  ['ns1', '日本'.repeat(60), 'p80'],
  ['ns1', 'emoji\u{1F600}lone\ud800', 'p80'],
];

/** Every service shape that writes comments: LB with source ranges, eTP Local with and without local endpoints, affinity, no endpoints. */
function states(): ServicePortState[] {
  return ODD_NAMES.flatMap(([namespace, name, portName], i): ServicePortState[] => {
    const key = portName ? `${namespace}/${name}:${portName}` : `${namespace}/${name}`;
    const sp = servicePort({
      key,
      namespace,
      name,
      portName,
      clusterIP: `172.30.1.${i + 1}`,
      nodePort: 30100 + i,
      externalIPs: [`192.168.99.${i + 1}`],
      loadBalancerVIPs: [`1.2.3.${i + 1}`],
      loadBalancerSourceRanges: ['192.168.0.0/16'],
      sessionAffinityTimeout: 600,
      externalPolicyLocal: i % 2 === 0,
      healthCheckNodePort: i % 2 === 0 ? 32100 + i : 0,
    });
    const eps = i === 4 ? [] : [endpoint('10.0.0.5', { isLocal: i % 4 === 0 }), endpoint('10.0.1.5')];
    const local = eps.filter((e) => e.isLocal);
    return [
      {
        service: sp,
        endpoints: eps,
        selection: { cluster: eps, local: sp.externalPolicyLocal ? local : null, allReachable: eps, hasAny: eps.length > 0, topologyReason: null },
      },
    ];
  });
}

const snapshot: Snapshot = { family: 'IPv4', node: nodeInfo({ podCIDRs: ['10.0.0.0/24'] }), services: states() };
const options = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR' as const, clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
};

function allRules(rs: Ruleset): string[] {
  return rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
}

describe('object text in rendered rules', () => {
  const { ruleset } = renderRuleset(snapshot, options);

  it('every rule parses as iptables parses it, with no unknown option', () => {
    for (const rule of allRules(ruleset)) {
      const words = parseRuleWords(tokenizeRule(rule));
      expect(words.unknownOptions, rule).toEqual([]);
    }
  });

  it('each comment reads back as the text the kernel keeps (at most 255 bytes, whole characters)', () => {
    const commentOf = (r: string) => findOption(parseRuleWords(tokenizeRule(r)), 'comment', '--comment')?.values[0];
    // Endpoint chains carry the bare service port name: one DNAT rule per endpoint of each service that has some.
    const dnat = allRules(ruleset).filter((r) => r.includes(' -j DNAT '));
    const expected = snapshot.services.flatMap((s) => s.endpoints.map(() => kernelComment(s.service.key)));
    expect(dnat.map(commentOf).sort()).toEqual(expected.sort());
    expect(allRules(ruleset).map(commentOf)).toContain(kernelComment(`ns1/quote"d:p80 cluster IP`));
    for (const c of allRules(ruleset).map(commentOf)) {
      if (c === undefined) continue;
      expect(Buffer.byteLength(c), c).toBeLessThanOrEqual(255);
      expect(kernelComment(c)).toBe(c);
    }
  });

  it('keeps the verdict of no-endpoint rules whatever the name holds (a "|" once split them)', () => {
    const reject = allRules(ruleset).filter((r) => r.includes('pi|pe'));
    expect(reject.length).toBeGreaterThan(0);
    for (const r of reject.filter((x) => x.includes('has no endpoints'))) expect(parseRuleWords(tokenizeRule(r)).target).toBe('REJECT');
    expect(reject.filter((x) => x.includes('has no endpoints'))).toHaveLength(4); // ClusterIP, external IP, LB VIP, node port
  });

  it('loads into the fake kernel and diffs converged against its save output', async () => {
    const ipt = new FakeIptables();
    await ipt.restore(toRestoreText(ruleset, { builtins: 'insert' }), { noflush: true, counters: false });
    const live = parseSave(await ipt.save(['filter', 'nat']), 'IPv4');
    expect(diffRulesets(ruleset, live).groups).toEqual([]);
  });

  it('userspace portal rules carry the same text safely', async () => {
    const rs = renderPortals(
      snapshot.services.map((s, i) => ({ service: s.service, internalPort: 36000 + i, externalPort: 36000 + i, nodePortHeld: true })),
      { family: 'IPv4', hostIP: '192.168.0.2', bindAddress: '0.0.0.0' },
    );
    for (const rule of allRules(rs)) expect(parseRuleWords(tokenizeRule(rule)).unknownOptions, rule).toEqual([]);
    const ipt = new FakeIptables();
    await ipt.restore(toRestoreText(rs, { builtins: 'insert' }), { noflush: true, counters: false });
    const comments = allRules(parseSave(await ipt.save(['nat']), 'IPv4')).map(
      (r) => findOption(parseRuleWords(tokenizeRule(r)), 'comment', '--comment')?.values[0],
    );
    expect(comments).toContain(kernelComment('ns1/quote"d:p80'));
  });
});
