/**
 * Rule specs as words: the tokeniser iptables-restore uses (whitespace
 * separated, double quotes with backslash escapes inside them), its inverse,
 * and a structured view of a rule (basic options, match modules with their
 * options, target with its options) that the tracer, the differ and the fake
 * iptables share. Options are attributed to modules as iptables does: the
 * module that knows the option, not merely the one written before it, and
 * `-p tcp --dport 80` loads an implicit tcp match.
 */
import {
  BASIC_ALIASES,
  FLAG_OPTIONS,
  JUMP_FLAGS,
  MATCH_FLAGS,
  MATCH_OPTIONS,
  OPTION_ALIASES,
  PROTOCOL_NUMBERS,
  TARGET_OPTIONS,
  TWO_VALUE_OPTIONS,
} from './rule-options.ts';

export interface RuleOption {
  /** Canonical name: "-s", "--dport", "--comment". */
  readonly name: string;
  readonly values: readonly string[];
  /** Written with "!" before the option (or, old style, before its value). */
  readonly negated: boolean;
}

export interface MatchSection {
  readonly module: string;
  /** Loaded by iptables itself: `-p tcp --dport 80` without `-m tcp`. */
  readonly implicit: boolean;
  readonly options: readonly RuleOption[];
}

export interface RuleWords {
  /** -p -s -d -i -o -f in the order written. */
  readonly basic: readonly RuleOption[];
  readonly matches: readonly MatchSection[];
  /** -j or -g target (chain or extension); null for a rule without one. */
  readonly target: string | null;
  /** True for -g (goto). */
  readonly goto: boolean;
  readonly targetArgs: readonly RuleOption[];
  /** Names of the negated options, in order ("-s", "--ctstate"). */
  readonly negations: readonly string[];
  /** Options no module or target of the rule knows (iptables rejects the rule: unknown option). */
  readonly unknownOptions: readonly string[];
}

/** A rule spec iptables would refuse to parse. */
export class RuleSyntaxError extends Error {
  override readonly name = 'RuleSyntaxError';
}

/** Splits a rule spec into words exactly as iptables-restore does (xshared.c add_param_to_argv). */
export function tokenizeRule(spec: string): string[] {
  if (!spec.includes('"')) return spec.split(/[ \t\n]+/).filter((w) => w !== '');
  const out: string[] = [];
  let buf = '';
  let inQuote = false;
  let escaped = false;
  for (const ch of spec) {
    if (inQuote) {
      if (escaped) {
        buf += ch;
        escaped = false;
      } else if (ch === '\\') escaped = true;
      else if (ch === '"') {
        // A closing quote always ends the word, even an empty one.
        inQuote = false;
        out.push(buf);
        buf = '';
      } else buf += ch;
    } else if (ch === '"') inQuote = true;
    else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (buf !== '') out.push(buf);
      buf = '';
    } else buf += ch;
  }
  if (inQuote) throw new RuleSyntaxError(`unterminated quote in rule: ${spec}`);
  if (buf !== '') out.push(buf);
  return out;
}

/** A word as it must be written for tokenizeRule to give it back: quoted only when empty or holding blanks or quotes. */
export function quoteWord(w: string): string {
  if (w !== '' && !/[\s"]/.test(w)) return w;
  return `"${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Canonical protocol name of a -p value ("TCP" and "6" are "tcp"). */
export function protocolName(value: string): string {
  const v = value.toLowerCase();
  return PROTOCOL_NUMBERS[v] ?? v;
}

interface Section {
  readonly module: string;
  readonly implicit: boolean;
  readonly options: RuleOption[];
}

const knows = (list: readonly string[] | undefined, name: string): boolean => list?.includes(name) ?? false;

/** Every option whose arity we know. */
const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  ...FLAG_OPTIONS,
  ...TWO_VALUE_OPTIONS,
  ...Object.values(MATCH_OPTIONS).flat(),
  ...Object.values(TARGET_OPTIONS).flat(),
]);

/** The structured view of a tokenised rule spec; throws RuleSyntaxError where iptables would. */
export function parseRuleWords(tokens: readonly string[]): RuleWords {
  const basic: RuleOption[] = [];
  const matches: Section[] = [];
  const targetArgs: RuleOption[] = [];
  const negations: string[] = [];
  const unknownOptions: string[] = [];
  let target: string | null = null;
  let goto = false;
  let context: Section | 'target' | null = null;
  let negate = false;

  const valueAt = (i: number, option: string): string => {
    const v = tokens[i];
    if (v === undefined) throw new RuleSyntaxError(`option "${option}" requires an argument`);
    return v;
  };
  const ownerOf = (name: string): Section | 'target' | null => {
    if (context !== null && context !== 'target' && knows(MATCH_OPTIONS[context.module], name)) return context;
    if (context === 'target' && target !== null && knows(TARGET_OPTIONS[target], name)) return 'target';
    const loaded = matches.find((m) => knows(MATCH_OPTIONS[m.module], name));
    if (loaded) return loaded;
    if (target !== null && knows(TARGET_OPTIONS[target], name)) return 'target';
    const proto = basic.find((b) => b.name === '-p');
    const protoModule = proto && !proto.negated ? protocolName(proto.values[0]!) : null;
    if (protoModule !== null && knows(MATCH_OPTIONS[protoModule], name)) {
      const implicit: Section = { module: protoModule, implicit: true, options: [] };
      matches.push(implicit);
      return implicit;
    }
    // Unknown to every module whose options we know: positional, and flagged when that module is known.
    const positional = context === 'target' ? (target !== null && TARGET_OPTIONS[target] === undefined ? 'target' : null) : context;
    if (positional === null || (positional !== 'target' && MATCH_OPTIONS[positional.module] !== undefined)) unknownOptions.push(name);
    return positional ?? context;
  };

  for (let i = 0; i < tokens.length;) {
    const t = tokens[i]!;
    if (t === '!') {
      if (negate) throw new RuleSyntaxError('multiple consecutive "!" not allowed');
      negate = true;
      i++;
      continue;
    }
    const basicName = BASIC_ALIASES[t];
    if (basicName !== undefined) {
      if (basic.some((b) => b.name === basicName)) throw new RuleSyntaxError(`multiple ${basicName} flags not allowed`);
      let negated = negate;
      let values: string[] = [];
      if (basicName !== '-f') {
        let v = valueAt(i + 1, t);
        if (v === '!') {
          negated = true;
          v = valueAt(++i + 1, t);
        }
        values = [v];
        i++;
      }
      basic.push({ name: basicName, values, negated });
      if (negated) negations.push(basicName);
      negate = false;
      i++;
      continue;
    }
    if (negate && (MATCH_FLAGS.has(t) || JUMP_FLAGS[t] !== undefined)) throw new RuleSyntaxError(`"!" not allowed before ${t}`);
    if (MATCH_FLAGS.has(t)) {
      context = { module: valueAt(i + 1, t), implicit: false, options: [] };
      matches.push(context);
      i += 2;
      continue;
    }
    const jump = JUMP_FLAGS[t];
    if (jump !== undefined) {
      if (target !== null) throw new RuleSyntaxError(`multiple -j flags not allowed`);
      target = valueAt(i + 1, t);
      goto = jump === 'g';
      context = 'target';
      i += 2;
      continue;
    }
    if (!t.startsWith('-') || t === '-') throw new RuleSyntaxError(`bad argument "${t}"`);
    const name = OPTION_ALIASES[t] ?? t;
    const owner = ownerOf(name);
    const next = tokens[i + 1];
    const unknownArity = !KNOWN_OPTIONS.has(name) && (next === undefined || /^-[-a-zA-Z]/.test(next));
    const arity = FLAG_OPTIONS.has(name) || unknownArity ? 0 : TWO_VALUE_OPTIONS.has(name) ? 2 : 1;
    let negated = negate;
    i++;
    if (arity > 0 && tokens[i] === '!') {
      negated = true;
      i++;
    }
    const values: string[] = [];
    for (let k = 0; k < arity; k++) values.push(valueAt(i++, name));
    const option: RuleOption = { name, values, negated };
    if (negated) negations.push(name);
    negate = false;
    if (owner === 'target') targetArgs.push(option);
    else if (owner !== null) owner.options.push(option);
  }
  if (negate) throw new RuleSyntaxError('"!" at the end of the rule');
  return { basic, matches, target, goto, targetArgs, negations, unknownOptions };
}

/** The first option of that name in a match section of that module (any module when null). */
export function findOption(words: RuleWords, module: string | null, name: string): RuleOption | undefined {
  for (const m of words.matches) {
    if (module !== null && m.module !== module) continue;
    const o = m.options.find((x) => x.name === name);
    if (o) return o;
  }
  return undefined;
}
