/**
 * YAML as apimachinery's YAML serializer writes an object: sigs.k8s.io/yaml's JSONToYAML, which reads the JSON into
 * go-yaml v2 maps and marshals them again: keys sorted (go-yaml's keyList order), block style, sequences in a mapping
 * not indented, and each string plain, single-quoted where a plain one would not read back (`': '`, a leading `[`...),
 * or double-quoted where it would read back as another type (`"true"`, `"1.36"`, `""`, a timestamp), long plain and
 * single-quoted ones folded at spaces past column 80 as go-yaml's emitter does. Enough for the z-pages' objects
 * (strings, integers, string lists, maps of them); not a general emitter.
 */
import { goYamlResolvesNonString } from '../config-file.ts';

type YamlValue = string | number | null | readonly YamlValue[] | { readonly [key: string]: YamlValue };

const BEST_WIDTH = 80;
const BEST_INDENT = 2;

/** go-yaml v2's keyList.Less: runs of digits compare as numbers, and a non-letter sorts before a letter. */
function keyLess(a: string, b: string): boolean {
  const ar = [...a];
  const br = [...b];
  const letter = (c: string): boolean => /\p{L}/u.test(c);
  const digit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) continue;
    const al = letter(ar[i]!);
    const bl = letter(br[i]!);
    if (al && bl) return ar[i]! < br[i]!;
    if (al || bl) return bl;
    let an = 0;
    let bn = 0;
    if (ar[i] === '0' || br[i] === '0') {
      for (let j = i - 1; j >= 0 && digit(ar[j]); j--)
        if (ar[j] !== '0') {
          an = 1;
          bn = 1;
          break;
        }
    }
    let ai = i;
    let bi = i;
    for (; digit(ar[ai]); ai++) an = an * 10 + Number(ar[ai]);
    for (; digit(br[bi]); bi++) bn = bn * 10 + Number(br[bi]);
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i]! < br[i]!;
  }
  return ar.length < br.length;
}

/** yaml_emitter_analyze_scalar's verdict on block plain style. */
function plainAllowed(s: string): boolean {
  if (/^ |[ ]$|^(---|\.\.\.)/.test(s)) return false;
  const first = s[0]!;
  const blankAfter = (i: number): boolean => i + 1 >= s.length || s[i + 1] === ' ' || s[i + 1] === '\t';
  if ('#,[]{}&*!|>\'"%@`'.includes(first)) return false;
  if ((first === '?' || first === ':' || first === '-') && blankAfter(0)) return false;
  for (let i = 1; i < s.length; i++) {
    if (s[i] === ':' && blankAfter(i)) return false;
    if (s[i] === '#' && s[i - 1] === ' ') return false;
  }
  return true;
}

/**
 * Characters go-yaml's emitter cannot write as they are (not printable): only a double-quoted scalar escapes them. A
 * line break too, here: go-yaml writes such a string as a literal block (`|-`), which these pages never have.
 */
const SPECIAL = /[\x00-\x1f\x7f-\x84\x86-\x9f\ufeff\ufffe\uffff]/;

const ESCAPES: Readonly<Record<string, string>> = {
  '\0': '0',
  '\x07': 'a',
  '\b': 'b',
  '\t': 't',
  '\n': 'n',
  '\v': 'v',
  '\f': 'f',
  '\r': 'r',
  '\x1b': 'e',
  '"': '"',
  '\\': '\\',
};

function doubleQuoted(s: string): string {
  return `"${s.replace(/["\\\x00-\x1f\x7f-\x84\x86-\x9f\ufeff]/g, (c) => `\\${ESCAPES[c] ?? `x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`}`)}"`;
}

/**
 * write_plain / write_single_quoted after `column` characters of the line: a space becomes a line break (to `indent`)
 * where the line is already past column 80 and the next character is not a space too.
 */
function folded(text: string, column: number, indent: number, quoted: boolean): string {
  let out = '';
  let col = column;
  let spaces = false;
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ' ') {
      const inner = !quoted || (i > 0 && i < chars.length - 1);
      if (!spaces && col > BEST_WIDTH && inner && chars[i + 1] !== ' ') {
        out += `\n${' '.repeat(indent)}`;
        col = indent;
      } else {
        out += c;
        col++;
      }
      spaces = true;
      continue;
    }
    spaces = false;
    if (quoted && c === "'") {
      out += "''";
      col += 2;
    } else {
      out += c;
      col++;
    }
  }
  return out;
}

/** A string value written after `column` characters of its line; continuation lines at `indent`. */
function scalar(s: string, column: number, indent: number): string {
  if (goYamlResolvesNonString(s) || /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/.test(s) || SPECIAL.test(s)) return doubleQuoted(s);
  if (plainAllowed(s)) return folded(s, column, indent, false);
  return `'${folded(s, column + 1, indent, true)}'`;
}

function emitMapping(obj: { readonly [key: string]: YamlValue }, indent: number): string {
  const keys = Object.keys(obj).sort((a, b) => (keyLess(a, b) ? -1 : keyLess(b, a) ? 1 : 0));
  let out = '';
  for (const key of keys) {
    const head = `${' '.repeat(indent)}${key}:`;
    const value = obj[key]!;
    if (Array.isArray(value)) {
      if (value.length === 0) out += `${head} []\n`;
      else out += `${head}\n${value.map((v) => `${' '.repeat(indent)}- ${inline(v, indent + 2, indent + BEST_INDENT)}\n`).join('')}`;
    } else if (value !== null && typeof value === 'object') {
      out +=
        Object.keys(value).length === 0
          ? `${head} {}\n`
          : `${head}\n${emitMapping(value as { readonly [key: string]: YamlValue }, indent + BEST_INDENT)}`;
    } else out += `${head} ${inline(value as YamlValue, head.length + 1, indent + BEST_INDENT)}\n`;
  }
  return out;
}

function inline(value: YamlValue, column: number, indent: number): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return scalar(value, column, indent);
  throw new Error('go-yaml: nested collections in sequences are not supported');
}

/** JSONToYAML of the object's JSON: a block mapping, ending with a newline. */
export function encodeYaml(obj: { readonly [key: string]: YamlValue }): string {
  return emitMapping(obj, 0);
}
