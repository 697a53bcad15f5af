/**
 * Every import of production code points down the house: src -> {userspace,
 * iptables, nftables, proxier}; userspace -> {iptables, proxier}; iptables ->
 * proxier; nftables -> proxier; proxier -> nothing. And no production module
 * takes part in an import circle. Tests, *.case.ts, bench/ and examples/ may
 * reach anywhere. Imports are read from the source text (static, export-from
 * and dynamic imports, type-only ones included).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = normalize(join(import.meta.dirname, '..'));
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  src: ['userspace', 'iptables', 'nftables', 'proxier'],
  userspace: ['iptables', 'proxier'],
  iptables: ['proxier'],
  nftables: ['proxier'],
  proxier: [],
};

function productionFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.case.ts'))
    .map((f) => join(folder, f));
}

/** Relative module specifiers a file imports, resolved to repository paths. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|[\s;}])(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm,
  )) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith('.')) out.push(normalize(join(dirname(file), spec)));
  }
  return out;
}

const files = Object.keys(ALLOWED).flatMap(productionFiles);
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]));
const top = (path: string): string => path.split('/')[0]!;

describe('import direction', () => {
  it('reads imports of every form', () => {
    const text =
      "import type { A } from '../proxier/a.ts';\nimport {\n  B,\n} from './b.ts';\nexport { C } from '../iptables/c.ts';\nconst d = await import('./d.ts');\nimport 'node:fs';\n";
    expect(importsOf('userspace/x.ts', text)).toEqual(['proxier/a.ts', 'userspace/b.ts', 'iptables/c.ts', 'userspace/d.ts']);
  });

  it('finds the production files of every folder', () => {
    for (const folder of Object.keys(ALLOWED))
      expect(
        files.some((f) => top(f) === folder),
        folder,
      ).toBe(true);
  });

  it('has no production import pointing up or sideways', () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      for (const target of imports) {
        const from = top(file);
        const to = top(target);
        if (to !== from && !ALLOWED[from]!.includes(to)) wrong.push(`${file} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import circle among production files', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') circles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative('.', f)).join(' -> '));
        else if (!state.has(next) && graph.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });
});
