/**
 * callers.json: each logging call of a chunk named by its source file and line, read from the bundler's source map.
 * Built here with rolldown from a small TypeScript file whose types shift the lines, as the agent's do.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'rolldown';
import { afterAll, describe, expect, it } from 'vitest';
import { callerOf } from '../src/log.ts';
import { chunkCallers, decodeMappings } from './callers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kpt-callers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SOURCE = `interface Log {
  info(msg: string): void;
  warn(msg: string): void;
}
type Unused = { a: number };

export function run(log: Log, other: { log: Log }): void {
  log.info('first');
  const x: Unused = { a: 1 };
  if (x.a > 0) log.warn('second'), other.log.info('third');
  other
    .log.warn('fourth');
  console.info('from console');
  dep.info('in a dependency');
}
import { dep } from './node_modules/dep/index.ts';
`;

describe('build/callers.ts', () => {
  it('decodes base64 VLQ mappings (the source map spec): relative fields, lines, segments without a source', () => {
    // AAAA: [0,0,0,0]; CAAC: column +1, source column +1; ;: next line, the column resets; ACCC: source, line and column +1 from the last.
    expect(decodeMappings('AAAA,CAAC;ACCC;;E')).toEqual([
      [
        [0, 0, 0, 0],
        [1, 0, 0, 1],
      ],
      [[0, 1, 1, 2]],
      [],
      [],
    ]);
    // Multi-digit values: 16 is gB, -17 is jB.
    expect(decodeMappings('gBAAjB')[0]).toEqual([[16, 0, 0, -17]]);
  });

  it('names each logging call of a chunk by its file and line in the sources, not a dependency', async () => {
    mkdirSync(join(dir, 'src'), { recursive: true });
    mkdirSync(join(dir, 'src/node_modules/dep'), { recursive: true });
    writeFileSync(join(dir, 'src/mod.ts'), SOURCE);
    writeFileSync(
      join(dir, 'src/node_modules/dep/index.ts'),
      `export const dep = {\n  info(m: string) {\n    console.log(m);\n  },\n};\nconsole.warn('dep loaded');\n`,
    );
    const out = join(dir, 'out');
    const r = await build({
      cwd: dir,
      platform: 'node',
      input: join(dir, 'src/mod.ts'),
      write: false,
      output: { dir: out, format: 'esm', sourcemap: 'hidden', comments: false },
    });
    const chunk = r.output.find((o) => o.type === 'chunk')!;
    const calls = chunkCallers(chunk.code, chunk.map!, { mapDir: out, root: dir });
    const named = Object.values(calls).flatMap((c) => c.map(([, where]) => where));
    expect(named.toSorted()).toEqual(
      ['src/mod.ts:10', 'src/mod.ts:10', 'src/mod.ts:12', 'src/mod.ts:13', 'src/mod.ts:14', 'src/mod.ts:8'].toSorted(),
    );
    // Each generated line's calls are named by the column V8 gives a method call (its name's), as callerOf looks them up.
    const lines = chunk.code.split('\n');
    for (const [line, entries] of Object.entries(calls))
      for (const [column] of entries) expect(lines[Number(line) - 1]!.slice(column - 2)).toMatch(/^\.(info|warn)\(/);
    const [line, entries] = Object.entries(calls).find(([, e]) => e.length === 2)!;
    const frame = (column: number) => `Error\n    at LOG (file:///x/log.mjs:1:1)\n    at run (file:///x/dist/main.mjs:${line}:${column})`;
    const table = { 'main.mjs': calls };
    expect([callerOf(frame(entries[0]![0]), table), callerOf(frame(entries[1]![0]), table)]).toEqual(['mod.ts:10', 'mod.ts:10']);
    // A line the table does not have keeps the chunk's name.
    expect(callerOf(`Error\n    at run (file:///x/dist/main.mjs:99999:3)`, table)).toBe('main.mjs:99999');
  });
});
