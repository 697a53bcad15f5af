/**
 * Reads `nft -f` transaction text of the shapes transaction.ts writes (and
 * knftables' Dump prints) back into operations: the input of the fake nft
 * and of tests that count or inspect operations. One command per line; a
 * chain block with rules (`add chain X { rule ; rule ; }`) reads as the
 * chain and one `add rule` per rule, a set block with `elements = { ... }`
 * as the set and one `add element`, all with that line's number. Blank
 * lines and `#` comments are skipped. Errors name the line.
 */
import { elementText, type BaseChainSpec, type ChainType, type Hook, type NftElement, type NftFamily } from './model.ts';

export type ObjectType = 'table' | 'chain' | 'set' | 'map' | 'rule' | 'element' | 'counter';

export type Op =
  | { readonly verb: 'add'; readonly type: 'table'; readonly comment: string | null }
  | { readonly verb: 'add'; readonly type: 'chain'; readonly name: string; readonly base: BaseChainSpec | null; readonly comment: string | null }
  | { readonly verb: 'add'; readonly type: 'rule'; readonly chain: string; readonly rule: string }
  | {
      readonly verb: 'add';
      readonly type: 'set' | 'map';
      readonly name: string;
      readonly setType: string;
      readonly flags: readonly string[];
      readonly timeout: number | null;
      readonly comment: string | null;
    }
  | { readonly verb: 'add' | 'delete'; readonly type: 'element'; readonly set: string; readonly elements: readonly NftElement[] }
  | { readonly verb: 'flush' | 'delete'; readonly type: 'table' }
  | { readonly verb: 'flush' | 'delete'; readonly type: 'chain' | 'set' | 'map'; readonly name: string }
  | { readonly verb: 'add' | 'delete'; readonly type: 'counter'; readonly name: string };

export interface ScriptLine {
  /** 1-based line number in the text. */
  readonly line: number;
  readonly text: string;
  readonly op: Op;
  readonly family: NftFamily;
  readonly table: string;
}

export class ScriptError extends Error {
  readonly line: number;
  constructor(line: number, text: string, reason: string) {
    super(`line ${line}: ${reason}: ${text}`);
    this.name = 'ScriptError';
    this.line = line;
  }
}

/** Splits on `sep` outside double quotes and braces. */
export function splitTop(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '{') depth++;
    else if (!quoted && ch === '}') depth--;
    else if (!quoted && depth === 0 && text.startsWith(sep, i)) {
      out.push(text.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** The inside of a trailing `{ ... }`, or null when there is none. */
function braced(rest: string): string | null {
  const t = rest.trim();
  if (t === '') return null;
  if (!t.startsWith('{') || !t.endsWith('}')) throw new Error(`expected "{ ... }", found ${JSON.stringify(t)}`);
  return t.slice(1, -1).trim();
}

function unquote(s: string): string {
  const m = /^"([^"]*)"$/.exec(s.trim());
  if (!m) throw new Error(`expected a quoted string, found ${JSON.stringify(s)}`);
  return m[1]!;
}

/** A chain block: hook (base chains), comment, and any rules after them. */
function chainOptions(inner: string | null): { base: BaseChainSpec | null; comment: string | null; rules: string[] } {
  let base: BaseChainSpec | null = null;
  let comment: string | null = null;
  const rules: string[] = [];
  for (const opt of splitTop(inner ?? '', ';')) {
    const m = /^type (filter|nat) hook (prerouting|input|forward|output|postrouting) priority (-?\d+)$/.exec(opt);
    if (m && rules.length === 0) base = { type: m[1] as ChainType, hook: m[2] as Hook, priority: Number(m[3]) };
    else if (opt === 'policy accept' && rules.length === 0) continue;
    else if (opt.startsWith('comment ') && rules.length === 0) comment = unquote(opt.slice(8));
    else if (/^(type|policy|comment|hook|priority|flags|devices) /.test(opt) && rules.length === 0)
      throw new Error(`unknown chain option ${JSON.stringify(opt)}`);
    else rules.push(opt);
  }
  return { base, comment, rules };
}

function setOptions(inner: string | null) {
  let setType = '';
  let flags: string[] = [];
  let timeout: number | null = null;
  let comment: string | null = null;
  let elements: NftElement[] = [];
  for (const opt of splitTop(inner ?? '', ';')) {
    if (opt.startsWith('type ')) setType = opt.slice(5).trim();
    else if (opt.startsWith('flags '))
      flags = opt
        .slice(6)
        .split(',')
        .map((f) => f.trim());
    else if (opt.startsWith('timeout ')) {
      const m = /^timeout (\d+)s$/.exec(opt);
      if (!m) throw new Error(`timeout must be in seconds: ${JSON.stringify(opt)}`);
      timeout = Number(m[1]);
    } else if (opt.startsWith('comment ')) comment = unquote(opt.slice(8));
    else if (/^elements\s*=/.test(opt)) elements = splitTop(braced(opt.replace(/^elements\s*=/, '')) ?? '', ',').map(parseElement);
    else throw new Error(`unknown set option ${JSON.stringify(opt)}`);
  }
  if (setType === '') throw new Error('set or map without a type');
  return { decl: { setType, flags, timeout, comment }, elements };
}

/** `key [comment "c"] [: value]` */
export function parseElement(text: string): NftElement {
  const [keyPart, ...valueParts] = splitTop(text, ' : ');
  if (keyPart === undefined || valueParts.length > 1) throw new Error(`bad element ${JSON.stringify(text)}`);
  const m = /^(.*?)(?: comment ("[^"]*"))?$/.exec(keyPart)!;
  return { key: m[1]!.trim(), value: valueParts[0] ?? null, comment: m[2] === undefined ? null : unquote(m[2]) };
}

function parseOps(words: string[], rest: string): { ops: Op[]; family: NftFamily; table: string } {
  const [verb, type, family, table] = words;
  if (family !== 'ip' && family !== 'ip6') throw new Error(`family ${JSON.stringify(family)} is not ip or ip6`);
  if (table === undefined) throw new Error('no table name');
  const at = { family, table } as const;
  if (type === 'table') {
    if (verb === 'add') return { ops: [{ verb, type, comment: chainOptions(braced(rest)).comment }], ...at };
    if (verb === 'flush' || verb === 'delete') return { ops: [{ verb, type }], ...at };
  }
  const name = rest.trim().split(' ')[0];
  if (!name) throw new Error('no object name');
  const tail = rest.trim().slice(name.length);
  if (type === 'rule' && verb === 'add') return { ops: [{ verb, type, chain: name, rule: tail.trim() }], ...at };
  if (type === 'element' && (verb === 'add' || verb === 'delete')) {
    return { ops: [{ verb, type, set: name, elements: splitTop(braced(tail) ?? '', ',').map(parseElement) }], ...at };
  }
  if (type === 'chain' && verb === 'add') {
    const { base, comment, rules } = chainOptions(braced(tail));
    return {
      ops: [{ verb, type, name, base, comment }, ...rules.map((rule) => ({ verb: 'add' as const, type: 'rule' as const, chain: name, rule }))],
      ...at,
    };
  }
  if ((type === 'set' || type === 'map') && verb === 'add') {
    const { decl, elements } = setOptions(braced(tail));
    const ops: Op[] = [{ verb, type, name, ...decl }];
    if (elements.length > 0) ops.push({ verb, type: 'element', set: name, elements });
    return { ops, ...at };
  }
  if (type === 'counter' && (verb === 'add' || verb === 'delete') && tail.trim() === '') return { ops: [{ verb, type, name }], ...at };
  if ((type === 'chain' || type === 'set' || type === 'map') && (verb === 'flush' || verb === 'delete') && tail.trim() === '') {
    return { ops: [{ verb, type, name }], ...at };
  }
  throw new Error(`unsupported operation "${verb} ${type}"`);
}

export function parseScript(text: string): ScriptLine[] {
  const out: ScriptLine[] = [];
  text.split('\n').forEach((raw, i) => {
    // nft's blanks are spaces and tabs; anything else (U+2003, two spaces in a comment) is kept as written.
    const line = raw.replace(/^[ \t\r]+|[ \t\r]+$/g, '');
    if (line === '' || line.startsWith('#')) return;
    const m = /^([^ \t]+)(?:[ \t]+([^ \t]+))?(?:[ \t]+([^ \t]+))?(?:[ \t]+([^ \t]+))?(?:[ \t]+(.*))?$/s.exec(line)!;
    const words = m.slice(1, 5).filter((w) => w !== undefined);
    const rest = m[5] ?? '';
    try {
      const { ops, family, table } = parseOps(words, rest);
      for (const op of ops) out.push({ line: i + 1, text: line, op, family, table });
    } catch (err) {
      throw new ScriptError(i + 1, line, (err as Error).message);
    }
  });
  return out;
}

/**
 * The operations of a transaction, one line each in knftables' form (`add rule
 * <family> <table> <chain> <rule>`, one `add element` per element), whatever
 * block form the text used: for tests that look for one operation.
 */
export function operationLines(text: string): string[] {
  const out: string[] = [];
  for (const { op, family, table } of parseScript(text)) {
    const at = `${family} ${table}`;
    if (op.type === 'rule') out.push(`${op.verb} rule ${at} ${op.chain} ${op.rule}`);
    else if (op.type === 'element')
      for (const e of op.elements) out.push(`${op.verb} element ${at} ${op.set} { ${op.verb === 'delete' ? e.key : elementText(e)} }`);
    else if (op.type === 'table') out.push(`${op.verb} table ${at}`);
    else out.push(`${op.verb} ${op.type} ${at} ${op.name}`);
  }
  return out;
}
