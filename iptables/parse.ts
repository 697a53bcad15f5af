/**
 * The one reader of iptables-restore input and iptables-save output.
 * parseRestore is an explicit line-by-line state machine (outside a table / inside `*table` until
 * `COMMIT`) that records chain declarations and rule commands with their line
 * numbers, keeping each rule spec verbatim. It checks syntax only; what the
 * kernel would refuse (missing chains, busy chains) is fake-iptables' job.
 *
 * Built for size: a 25 MB input of 230,000 rules is one pass with no regular
 * expression per rule line. parse-save.ts builds a Ruleset on it (parseSave)
 * or reads only chain names and built-in chains, for the syncs (scanSave).
 */
import { BUILTIN_CHAINS } from './ruleset.ts';

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
