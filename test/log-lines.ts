/**
 * Reads back what an agent process logged, in either --logging-format: klog text lines (the default, src/log.ts)
 * or component-base's zap JSON lines (an info or warning line has `v`, an error none: JSON has no warning severity). Tests look at severities, messages and fields without caring which format ran.
 */

export type Severity = 'I' | 'W' | 'E' | 'F';

export interface LogLine {
  readonly severity: Severity;
  readonly msg: string;
  /** Field values: strings unquoted, numbers and booleans as written, JSON values (lists, objects) parsed. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly text: string;
}

const HEADER = /^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [^\s\]]+:\d+\] /;

/** Every log line of an output, a klog line with its multi-line values (`key=<`, tab-indented lines, ` >`); other text is skipped. */
export function logLines(output: string): LogLine[] {
  const records: string[] = [];
  for (const line of output.split('\n')) {
    if ((line.startsWith('\t') || line.startsWith(' >')) && records.length > 0) records[records.length - 1] += `\n${line}`;
    else records.push(line);
  }
  return records.map(parseLogLine).filter((l): l is LogLine => l !== null);
}

/** The lines logged as warnings or worse. */
export const complaints = (output: string): LogLine[] => logLines(output).filter((l) => l.severity !== 'I');
/** The lines logged as errors or worse. */
export const errorLines = (output: string): LogLine[] => logLines(output).filter((l) => l.severity === 'E' || l.severity === 'F');

export function parseLogLine(text: string): LogLine | null {
  if (text.startsWith('{')) {
    try {
      const { ts: _ts, caller: _caller, v, msg, ...fields } = JSON.parse(text) as Record<string, unknown>;
      return { severity: v === undefined ? 'E' : 'I', msg: String(msg ?? ''), fields, text };
    } catch {
      return null;
    }
  }
  const m = HEADER.exec(text);
  if (!m) return null;
  const scan = { s: text, i: m[0].length };
  const msg = readValue(scan);
  const fields: Record<string, unknown> = {};
  while (scan.i < text.length) {
    const eq = /^ ([^\s=]+)=/.exec(text.slice(scan.i));
    if (!eq) break;
    scan.i += eq[0].length;
    fields[eq[1]!] = readValue(scan);
  }
  return { severity: m[1] as Severity, msg: typeof msg === 'string' ? msg : String(msg), fields, text };
}

/** One klog value at scan.i: a Go-quoted string, a multi-line string, a JSON list or object, or a bare word. */
function readValue(scan: { s: string; i: number }): unknown {
  const { s } = scan;
  if (s.startsWith('<\n', scan.i)) {
    const end = s.indexOf('\n >', scan.i);
    const body = s.slice(scan.i + 2, end < 0 ? s.length : end);
    scan.i = end < 0 ? s.length : end + 3;
    return body.replace(/^\t/gm, '');
  }
  if (s[scan.i] === '"') {
    let out = '';
    for (let j = scan.i + 1; j < s.length; j++) {
      const c = s[j]!;
      if (c === '"') {
        scan.i = j + 1;
        return out;
      }
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = s[++j]!;
      if (e === 'x') {
        out += String.fromCharCode(parseInt(s.slice(j + 1, j + 3), 16));
        j += 2;
      } else out += ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[e] ?? e;
    }
    scan.i = s.length;
    return out;
  }
  if (s[scan.i] === '[' || s[scan.i] === '{') {
    // The shortest prefix that parses as JSON, scanning to each closing bracket.
    for (let j = scan.i + 1; j <= s.length; j++) {
      if (s[j - 1] !== ']' && s[j - 1] !== '}') continue;
      try {
        const v = JSON.parse(s.slice(scan.i, j)) as unknown;
        scan.i = j;
        return v;
      } catch {
        // not yet
      }
    }
  }
  const end = s.indexOf(' ', scan.i);
  const word = s.slice(scan.i, end < 0 ? s.length : end);
  scan.i += word.length;
  if (word === 'true' || word === 'false') return word === 'true';
  return /^-?\d+(\.\d+)?$/.test(word) ? Number(word) : word;
}
