import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ENTRY = new URL('./entry.js', import.meta.url).pathname;
const MAIN = new URL('./main.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'kpt-entry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Preloaded into the process: on exit, says on stderr whether Node loaded its type stripper (amaro).
const probe = join(dir, 'probe.mjs');
writeFileSync(probe, `process.on('exit', () => process.stderr.write('amaro=' + process.moduleLoadList.some((m) => m.includes('amaro')) + '\\n'));`);

/**
 * `node --import probe FILE --help` as installed: no NODE_COMPILE_CACHE in the environment (Node would then turn the
 * cache on itself, before any module), so the cache is the package's own node_modules/.cache that entry.js names.
 * stdout's first line, and whether amaro loaded.
 */
function run(file: string): { usage: string; amaro: boolean } {
  const { NODE_COMPILE_CACHE: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--import', probe, file, '--help'], { encoding: 'utf8', env });
  const m = /^amaro=(true|false)$/m.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${file} --help exited ${r.status}: ${r.stderr}`);
  return { usage: r.stdout.split('\n')[0]!, amaro: m[1] === 'true' };
}

describe('src/entry.js, the executable', () => {
  it('never loads the type stripper once the compile cache is warm; src/main.ts alone always does', () => {
    const first = run(ENTRY); // warms the cache if no earlier run did
    expect(first.usage).toMatch(/^Usage:/);
    expect(run(ENTRY)).toEqual({ usage: first.usage, amaro: false }); // stripped TypeScript comes from the cache
    expect(run(MAIN)).toEqual({ usage: first.usage, amaro: true }); // main.ts turns the cache on after it was stripped
  });
});
