import { describe, expect, it } from 'vitest';
import { findOption, parseRuleWords, quoteWord, RuleSyntaxError, tokenizeRule } from './rule-words.ts';

const words = (spec: string) => parseRuleWords(tokenizeRule(spec));

describe('tokenizeRule', () => {
  it('splits on blanks and keeps quoted comments whole', () => {
    expect(tokenizeRule('-m comment --comment "ns1/svc1:p80 cluster IP"  -j  KUBE-SVC-X')).toEqual([
      '-m',
      'comment',
      '--comment',
      'ns1/svc1:p80 cluster IP',
      '-j',
      'KUBE-SVC-X',
    ]);
  });

  it('unescapes \\" \\\\ and \\\' inside quotes, as iptables-save writes them', () => {
    // Literal iptables-save output for --comment "with \"quotes\" and \\ backslash" and "a\\b'c".
    expect(tokenizeRule('--comment "with \\"quotes\\" and \\\\ backslash"')).toEqual(['--comment', 'with "quotes" and \\ backslash']);
    expect(tokenizeRule('--comment "a\\\\b\\\'c"')).toEqual(['--comment', "a\\b'c"]);
  });

  it('keeps an empty quoted word and ends a word at its closing quote, like xshared.c', () => {
    expect(tokenizeRule('-m comment --comment "" -j ACCEPT')).toEqual(['-m', 'comment', '--comment', '', '-j', 'ACCEPT']);
    expect(tokenizeRule('a"b c"d')).toEqual(['ab c', 'd']);
  });

  it('leaves backslashes outside quotes alone and rejects an unterminated quote', () => {
    expect(tokenizeRule('--log-prefix a\\b')).toEqual(['--log-prefix', 'a\\b']);
    expect(() => tokenizeRule('--comment "open')).toThrow(/unterminated quote/);
  });
});

describe('quoteWord', () => {
  it('quotes only words that need it, and round-trips through the tokenizer', () => {
    expect(quoteWord('ns1/svc1:p80')).toBe('ns1/svc1:p80');
    expect(quoteWord('ns1/svc1:p80 cluster IP')).toBe('"ns1/svc1:p80 cluster IP"');
    expect(quoteWord('')).toBe('""');
    for (const w of ['a b', 'say "hi"', 'back\\slash and space', '', 'tab\there', "it's"]) {
      expect(tokenizeRule(`-x ${quoteWord(w)} -y`)).toEqual(['-x', w, '-y']);
    }
  });
});

describe('parseRuleWords', () => {
  it('splits a kube-proxy rule into basic options, modules and target', () => {
    const w = words('-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ');
    expect(w.basic).toEqual([
      { name: '-p', values: ['tcp'], negated: false },
      { name: '-d', values: ['172.30.0.41'], negated: false },
      { name: '-s', values: ['10.0.0.0/8'], negated: true },
    ]);
    expect(w.matches).toEqual([
      { module: 'comment', implicit: false, options: [{ name: '--comment', values: ['ns1/svc1:p80 cluster IP'], negated: false }] },
      // --dport written after -d still belongs to the tcp match.
      { module: 'tcp', implicit: false, options: [{ name: '--dport', values: ['80'], negated: false }] },
    ]);
    expect(w.target).toBe('KUBE-MARK-MASQ');
    expect(w.goto).toBe(false);
    expect(w.negations).toEqual(['-s']);
    expect(w.unknownOptions).toEqual([]);
  });

  it('attributes an option to the module that knows it, not the one before it', () => {
    // iptables-save prints this rule back as "-p tcp -m tcp --dport 80 -m comment --comment x".
    const w = words('-m tcp -p tcp -m comment --comment x --dport 80 -j ACCEPT');
    expect(findOption(w, 'tcp', '--dport')?.values).toEqual(['80']);
    expect(w.matches.map((m) => m.module)).toEqual(['tcp', 'comment']);
  });

  it('loads the protocol match implicitly for -p tcp --dport', () => {
    const w = words('-m comment --comment x -p tcp --dport 8080 -j ACCEPT');
    expect(w.matches.map((m) => [m.module, m.implicit])).toEqual([
      ['comment', false],
      ['tcp', true],
    ]);
  });

  it('reads negations before the option and, old style, before the value', () => {
    expect(words('-m mark ! --mark 0x4000/0x4000 -j RETURN').matches[0]!.options[0]).toEqual({
      name: '--mark',
      values: ['0x4000/0x4000'],
      negated: true,
    });
    expect(words('-s ! 1.2.3.4 -j RETURN').basic[0]).toEqual({ name: '-s', values: ['1.2.3.4'], negated: true });
    expect(words('-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP').negations).toEqual(['--ctstate']);
    expect(words('! -i cbr0+ -j X').basic[0]).toEqual({ name: '-i', values: ['cbr0+'], negated: true });
  });

  it('knows which options take no value', () => {
    const w = words('-m recent --name KUBE-SEP-A --rcheck --seconds 10800 --reap -j KUBE-SEP-A');
    expect(w.matches[0]!.options.map((o) => [o.name, o.values])).toEqual([
      ['--name', ['KUBE-SEP-A']],
      ['--rcheck', []],
      ['--seconds', ['10800']],
      ['--reap', []],
    ]);
    expect(words('-j MASQUERADE --random-fully').targetArgs).toEqual([{ name: '--random-fully', values: [], negated: false }]);
  });

  it("reads the SET target's set options as a name and flags, as iptables-save prints them (libxt_SET)", () => {
    const w = words('-p tcp -j SET --add-set KUBE-SEEN src,dst --exist --timeout 60');
    expect(w.target).toBe('SET');
    expect(w.targetArgs.map((o) => [o.name, o.values])).toEqual([
      ['--add-set', ['KUBE-SEEN', 'src,dst']],
      ['--exist', []],
      ['--timeout', ['60']],
    ]);
    expect(words('-j SET --del-set KUBE-SEEN src').targetArgs[0]?.values).toEqual(['KUBE-SEEN', 'src']);
    expect(words('-j SET --map-set M dst --map-mark').targetArgs.map((o) => [o.name, o.values])).toEqual([
      ['--map-set', ['M', 'dst']],
      ['--map-mark', []],
    ]);
  });

  it('collects target options, also when basic options follow them', () => {
    const w = words('-j REJECT --reject-with tcp-reset -p tcp');
    expect(w.targetArgs).toEqual([{ name: '--reject-with', values: ['tcp-reset'], negated: false }]);
    expect(w.basic[0]?.name).toBe('-p');
    expect(words('-m tcp -p tcp -j DNAT --to-destination [fd00::1]:80').targetArgs[0]?.values).toEqual(['[fd00::1]:80']);
    expect(words('-g KUBE-SVC-X')).toMatchObject({ target: 'KUBE-SVC-X', goto: true });
  });

  it('has no target for a comment-only rule', () => {
    const w = words('-m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"');
    expect(w.target).toBeNull();
    expect(w.targetArgs).toEqual([]);
  });

  it('names options no module of the rule knows', () => {
    expect(words('-m tcp -p tcp --dprot 80 -j ACCEPT').unknownOptions).toEqual(['--dprot']);
    expect(words('-m foo --bar 1 -j ACCEPT').unknownOptions).toEqual([]);
  });

  it('rejects what iptables rejects', () => {
    expect(() => words('-p tcp --dport')).toThrow('option "--dport" requires an argument');
    expect(() => words('-j ACCEPT -j DROP')).toThrow('multiple -j flags not allowed');
    expect(() => words('-s 1.2.3.4 -s 1.2.3.5')).toThrow('multiple -s flags not allowed');
    expect(() => words('-j ACCEPT stray')).toThrow(RuleSyntaxError);
    expect(() => words('-s 1.2.3.4 !')).toThrow(/at the end/);
  });
});
