import { describe, expect, it } from 'vitest';
import { snapshotOf } from '../test/domain.ts';
import { jumpRuleChanges, jumpRuleLines } from './jumps.ts';
import { parseSave } from './parse-save.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset } from './render.ts';

const desired = renderRuleset(snapshotOf([]), DEFAULT_RENDER_OPTIONS).ruleset;
const live = (filterOutput: string[], natOutput: string[] = []) =>
  parseSave(
    `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${filterOutput.map((r) => `-A OUTPUT ${r}\n`).join('')}COMMIT\n` +
      `*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n${natOutput.map((r) => `-A OUTPUT ${r}\n`).join('')}COMMIT\n`,
    'IPv4',
  );
const inChain = (rules: readonly { table: string; chain: string; rule: string }[], table: string, chain: string) =>
  rules.filter((r) => r.table === table && r.chain === chain).map((r) => r.rule);

describe('jumpRuleChanges: jump rules compared by their whole normalised spec (what iptables -C checks)', () => {
  it('accepts a live jump that differs only in spelling (option order, as iptables-save prints it)', () => {
    const c = jumpRuleChanges(desired, live(['-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']));
    expect(inChain(c.missing, 'filter', 'OUTPUT').some((r) => r.endsWith('-j KUBE-SERVICES'))).toBe(false);
    expect(c.stale).toEqual([]);
  });

  it("replaces a variant with other matches: 2016's filter OUTPUT jump without --ctstate NEW", () => {
    const old = '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES';
    const c = jumpRuleChanges(desired, live([old, old], [old]));
    expect(c.stale).toEqual([
      { table: 'filter', chain: 'OUTPUT', rule: old },
      { table: 'filter', chain: 'OUTPUT', rule: old },
    ]);
    expect(inChain(c.missing, 'filter', 'OUTPUT')).toContain(
      '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    );
    // The same text is the desired jump in nat OUTPUT: nothing to do there.
    expect(inChain(c.missing, 'nat', 'OUTPUT')).toEqual([]);
    const lines = jumpRuleLines(c).get('filter')!;
    expect(lines.slice(0, 2)).toEqual([`-D OUTPUT ${old}`, `-D OUTPUT ${old}`]);
    expect(lines.filter((l) => l.startsWith('-D '))).toHaveLength(2);
  });

  it("leaves other rules alone: foreign jumps, kubelet's KUBE-FIREWALL variants, rules iptables cannot parse", () => {
    const c = jumpRuleChanges(desired, live(['-j MY-CHAIN', '-m mark --mark 0x8000/0x8000 -j KUBE-FIREWALL', '-m bogus --x -j KUBE-OTHER']));
    expect(c.stale).toEqual([]);
  });

  it('treats a comment-less or differently commented jump to its chain as a variant', () => {
    const c = jumpRuleChanges(desired, live(['-m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL']));
    expect(c.stale).toEqual([{ table: 'filter', chain: 'OUTPUT', rule: '-m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL' }]);
  });
});

describe("jumpRuleChanges: a rule's target is its -j word, never text inside quotes (upstream's EnsureRule compares whole rules with iptables -C)", () => {
  it('leaves a foreign rule whose comment quotes a kube-proxy jump where it is', () => {
    const admin = '-m comment --comment "keep DNS up even when -j KUBE-SERVICES rejects" -p udp -m udp --dport 53 -j ACCEPT';
    const c = jumpRuleChanges(desired, live([admin], [admin]));
    expect(c.stale).toEqual([]);
    expect(
      jumpRuleLines(c)
        .get('filter')!
        .filter((l) => l.startsWith('-D ')),
    ).toEqual([]);
  });
});
