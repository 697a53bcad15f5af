/**
 * The one reader of iptables-restore input and iptables-save output.
 * parseRestore is an explicit line-by-line state machine (outside a table / inside `*table` until
 * `COMMIT`) that records chain declarations and rule commands with their line
 * numbers, keeping each rule spec verbatim. It checks syntax only; what the
 * kernel would refuse (missing chains, busy chains) is fake-iptables' job.
 *
 * Built for size: a 25 MB input of 230,000 rules is one pass with no regular
 * expression per rule line. parseSave builds the Ruleset on it; scanSave
 * reads only chain names and built-in chains, for the syncs.
 */
import type { IPFamily } from '../proxier/types.ts';
import { BUILTIN_CHAINS, isBuiltinChain, type Chain, type Ruleset } from './ruleset.ts';

export type RestoreOpName = 'A' | 'I' | 'D' | 'R' | 'X' | 'F' | 'N' | 'Z' | 'P';

export interface ChainDeclaration {
  readonly chain: string;
  /** "ACCEPT"/"DROP" for built-in chains; null for "-". */
  readonly policy: string | null;
  /** "[packets:bytes]" as written, when present. */
  readonly counters?: string;
  readonly line: number;
}

export interface RestoreOp {
  readonly op: RestoreOpName;
  /** Null for -F/-X/-Z without a chain (every chain of the table). */
  readonly chain: string | null;
  /** 1-based rule number of -I (when given), -R, and -D by number. */
  readonly position?: number;
  /** The rule spec as written (after chain and position); the policy for -P. */
  readonly rule?: string;
  /** "[packets:bytes]" prefix of the line, when present (iptables-save -c). */
  readonly counters?: string;
  readonly line: number;
}

export interface RestoreTable {
  readonly name: string;
  /** Line of the `*table` header. */
  readonly line: number;
  readonly declarations: readonly ChainDeclaration[];
  readonly ops: readonly RestoreOp[];
  readonly commitLine: number;
}

export interface RestoreDoc {
  readonly tables: readonly RestoreTable[];
}

/** Input iptables-restore would refuse to parse. */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  /** 1-based line number (one past the last line for a missing final COMMIT). */
  readonly line: number;
  /** The offending line's text ("" at end of input). */
  readonly text: string;

  constructor(line: number, text: string, problem: string) {
    super(`line ${line}: ${problem}${text === '' ? '' : `: ${JSON.stringify(text)}`}`);
    this.line = line;
    this.text = text;
  }
}

const COMMANDS: Readonly<Record<string, RestoreOpName>> = {
  '-A': 'A',
  '--append': 'A',
  '-I': 'I',
  '--insert': 'I',
  '-D': 'D',
  '--delete': 'D',
  '-R': 'R',
  '--replace': 'R',
  '-X': 'X',
  '--delete-chain': 'X',
  '-F': 'F',
  '--flush': 'F',
  '-N': 'N',
  '--new-chain': 'N',
  '-Z': 'Z',
  '--zero': 'Z',
  '-P': 'P',
  '--policy': 'P',
};

const isDigits = (s: string): boolean => s !== '' && /^\d+$/.test(s);

/** The next blank-separated word of `s` from `from`: [word, index after it]. */
function nextWord(s: string, from: number): [string, number] {
  let i = from;
  while (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9) i++;
  let j = i;
  while (j < s.length && s.charCodeAt(j) !== 32 && s.charCodeAt(j) !== 9) j++;
  return [s.slice(i, j), j];
}

const rest = (s: string, from: number): string => s.slice(from).trim();

function parseCommand(text: string, line: number): RestoreOp {
  let counters: string | undefined;
  let at = 0;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || !/^\[\d+:\d+\]$/.test(text.slice(0, close + 1))) throw new ParseError(line, text, 'bad counters');
    counters = text.slice(0, close + 1);
    at = close + 1;
  }
  const [cmd, afterCmd] = nextWord(text, at);
  const op = COMMANDS[cmd];
  if (op === undefined) throw new ParseError(line, text, `unknown command ${JSON.stringify(cmd)}`);
  const [chain, afterChain] = nextWord(text, afterCmd);
  const base = { op, chain: chain === '' ? null : chain, line, ...(counters !== undefined ? { counters } : {}) };
  if (chain === '' && op !== 'F' && op !== 'X' && op !== 'Z') throw new ParseError(line, text, `-${op} needs a chain name`);
  const tail = rest(text, afterChain);
  switch (op) {
    case 'A':
      return { ...base, rule: tail };
    case 'I':
    case 'R': {
      const [pos, afterPos] = nextWord(text, afterChain);
      if (isDigits(pos)) return { ...base, position: Number(pos), rule: rest(text, afterPos) };
      if (op === 'R') throw new ParseError(line, text, '-R needs a rule number');
      return { ...base, rule: tail };
    }
    case 'D':
      return isDigits(tail) ? { ...base, position: Number(tail) } : { ...base, rule: tail };
    case 'P':
      if (tail === '') throw new ParseError(line, text, '-P needs a policy');
      return { ...base, rule: tail };
    default:
      if (tail !== '') throw new ParseError(line, text, `unexpected words after -${op} ${chain}`);
      return base;
  }
}

function parseDeclaration(text: string, line: number): ChainDeclaration {
  const [name, afterName] = nextWord(text, 1);
  const [policy, afterPolicy] = nextWord(text, afterName);
  const [counters, afterCounters] = nextWord(text, afterPolicy);
  if (name === '' || policy === '' || rest(text, afterCounters) !== '' || (counters !== '' && !/^\[\d+:\d+\]$/.test(counters))) {
    throw new ParseError(line, text, 'bad chain declaration (want ":NAME POLICY [packets:bytes]")');
  }
  return { chain: name, policy: policy === '-' ? null : policy, line, ...(counters !== '' ? { counters } : {}) };
}

interface OpenTable {
  name: string;
  line: number;
  declarations: ChainDeclaration[];
  ops: RestoreOp[];
}

/** Parses iptables-restore input (or iptables-save output); throws ParseError where iptables-restore would. */
export function parseRestore(text: string): RestoreDoc {
  const tables: RestoreTable[] = [];
  let open: OpenTable | null = null;
  const lines = text.split('\n');
  const count = lines.length > 0 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
  for (let i = 0; i < count; i++) {
    let l = lines[i]!;
    const lineNo = i + 1;
    let c = l.charCodeAt(0);
    if (c === 32 || c === 9 || l.endsWith('\r')) {
      l = l.trim();
      c = l.charCodeAt(0);
    }
    if (l === '' || c === 35 /* # */) continue;
    if (c === 45 /* - */ || c === 91 /* [ */) {
      if (open === null) throw new ParseError(lineNo, l, 'rule for undeclared table');
      open.ops.push(parseCommand(l, lineNo));
    } else if (c === 58 /* : */) {
      if (open === null) throw new ParseError(lineNo, l, 'chain declaration for undeclared table');
      open.declarations.push(parseDeclaration(l, lineNo));
    } else if (c === 42 /* * */) {
      if (open !== null) throw new ParseError(lineNo, l, `missing COMMIT for table ${open.name}`);
      const name = l.slice(1).trim();
      if (BUILTIN_CHAINS[name] === undefined)
        throw new ParseError(lineNo, l, `unknown table ${JSON.stringify(name)} (known: ${Object.keys(BUILTIN_CHAINS).join(', ')})`);
      open = { name, line: lineNo, declarations: [], ops: [] };
    } else if (l === 'COMMIT') {
      if (open === null) throw new ParseError(lineNo, l, 'COMMIT outside a table');
      tables.push({ ...open, commitLine: lineNo });
      open = null;
    } else {
      throw new ParseError(lineNo, l, 'unexpected line');
    }
  }
  if (open !== null) throw new ParseError(count + 1, '', `missing COMMIT for table ${open.name} (end of input)`);
  return { tables };
}

interface MutableChain {
  name: string;
  policy: string | null;
  rules: string[];
}

/**
 * The Ruleset described by iptables-save output (or by restore input that
 * only declares chains and appends/inserts rules, such as toRestoreText's).
 * Tables and chains come in file order; built-in chains carry their policy
 * (ACCEPT when not declared), user chains policy null.
 */
export function parseSave(text: string, family: IPFamily): Ruleset {
  const tables = new Map<string, Map<string, MutableChain>>();
  for (const t of parseRestore(text).tables) {
    let chains = tables.get(t.name);
    if (!chains) tables.set(t.name, (chains = new Map()));
    const table = chains;
    const chainFor = (name: string, op: RestoreOp): MutableChain => {
      let c = table.get(name);
      if (!c && isBuiltinChain(t.name, name)) table.set(name, (c = { name, policy: 'ACCEPT', rules: [] }));
      if (!c) throw new ParseError(op.line, `-${op.op} ${name} ${op.rule ?? ''}`.trim(), `rule for undeclared chain ${name} in table ${t.name}`);
      return c;
    };
    // Declarations first: iptables-save and restore input declare every chain before the rules.
    for (const d of t.declarations) {
      const builtin = isBuiltinChain(t.name, d.chain);
      const existing = table.get(d.chain);
      if (existing && builtin) existing.policy = d.policy ?? existing.policy;
      else if (existing) existing.rules = [];
      else table.set(d.chain, { name: d.chain, policy: builtin ? (d.policy ?? 'ACCEPT') : null, rules: [] });
    }
    for (const op of t.ops) {
      if (op.op === 'A') chainFor(op.chain!, op).rules.push(op.rule!);
      else if (op.op === 'I') {
        const c = chainFor(op.chain!, op);
        const pos = op.position ?? 1;
        if (pos < 1 || pos > c.rules.length + 1)
          throw new ParseError(op.line, `-I ${op.chain} ${pos}`, `index of insertion too big (chain has ${c.rules.length} rules)`);
        c.rules.splice(pos - 1, 0, op.rule!);
      } else if (op.op === 'N') {
        if (!table.has(op.chain!)) table.set(op.chain!, { name: op.chain!, policy: null, rules: [] });
      } else {
        throw new ParseError(op.line, `-${op.op} ${op.chain ?? ''}`.trim(), `-${op.op} is not part of iptables-save output`);
      }
    }
  }
  return {
    family,
    tables: [...tables].map(([name, chains]) => ({ name, chains: [...chains.values()] as Chain[] })),
  };
}

export interface SaveScan {
  /** Chain names per table, in file order. */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Built-in chains with their rules only (user chains are listed without rules). */
  readonly builtins: Ruleset;
  /** Rules in all tables ("-A" lines). */
  readonly ruleCount: number;
}

/**
 * What a full sync (and the canary check, and the backend detection) needs
 * from iptables-save output, without parsing every rule: the chain names of
 * each table, the rules of the built-in chains, the number of rules. A linear
 * scan over lines (counters of `iptables-save -c` skipped); at 10,000 services it reads 17 MB in a few milliseconds
 * where parseSave takes a few hundred.
 */
export function scanSave(text: string, family: IPFamily): SaveScan {
  const chains = new Map<string, string[]>();
  let ruleCount = 0;
  const tables: { name: string; chains: Chain[] }[] = [];
  let table: { name: string; chains: Chain[]; byName: Map<string, string[]> } | null = null;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let c = text.charCodeAt(pos);
    if (c === 91 /* [ */) {
      // iptables-save -c: "[packets:bytes] -A ...".
      const close = text.indexOf('] ', pos);
      if (close > 0 && close < end) {
        pos = close + 2;
        c = text.charCodeAt(pos);
      }
    }
    if (c === 42 /* * */) {
      const name = text.slice(pos + 1, end).trim();
      table = { name, chains: [], byName: new Map() };
      tables.push(table);
      chains.set(name, []);
    } else if (c === 58 /* : */ && table) {
      const space = text.indexOf(' ', pos);
      const name = text.slice(pos + 1, space < 0 || space > end ? end : space);
      chains.get(table.name)!.push(name);
      if (isBuiltinChain(table.name, name)) {
        const policy = text.slice(space + 1, end).split(' ')[0] ?? 'ACCEPT';
        const rules: string[] = [];
        table.byName.set(name, rules);
        table.chains.push({ name, policy, rules });
      }
    } else if (c === 45 /* - */ && table && text.startsWith('-A ', pos)) {
      ruleCount++;
      const space = text.indexOf(' ', pos + 3);
      const rules = table.byName.get(text.slice(pos + 3, space));
      if (rules) rules.push(text.slice(space + 1, end));
    }
    pos = end + 1;
  }
  return { chains, builtins: { family, tables: tables.map((t) => ({ name: t.name, chains: t.chains })) }, ruleCount };
}
