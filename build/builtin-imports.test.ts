/**
 * ES imports of Node's built-in modules in the bundle (build/builtin-imports.ts): the module served in their place
 * gives the same exports without building Node's ES face, which reads every getter of the exports object. Checked in
 * fresh processes, by the built-in modules Node loaded (process.moduleLoadList).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build } from 'rolldown';
import { builtinImports, builtinModuleSource, served } from './builtin-imports.ts';

const dir = mkdtempSync(join(tmpdir(), 'kpt-builtins-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module in a fresh node; returns what it printed (JSON). */
function run(code: string): unknown {
  const file = join(dir, `m-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  return JSON.parse(execFileSync(process.execPath, [file], { encoding: 'utf8' }));
}

const UNDICI = 'NativeModule internal/deps/undici/undici';

describe('builtin-imports', () => {
  it("Node's own ES face of node:http loads its internal undici (http.WebSocket's getter); bundled through the plugin it does not", async () => {
    const entry = join(dir, 'entry.mjs');
    writeFileSync(
      entry,
      `import http, { createServer, STATUS_CODES } from 'node:http'; import { createRequire } from 'node:module';
       const real = createRequire(import.meta.url)('node:http');
       console.log(JSON.stringify([http === real, createServer === real.createServer, STATUS_CODES[404], process.moduleLoadList.includes('${UNDICI}')]));`,
    );
    await build({
      input: entry,
      platform: 'node',
      logLevel: 'silent',
      plugins: [builtinImports()],
      output: { dir: join(dir, 'out'), format: 'esm' },
    });
    expect(run(readFileSync(entry, 'utf8'))).toEqual([true, true, 'Not Found', true]);
    expect(JSON.parse(execFileSync(process.execPath, [join(dir, 'out/entry.js')], { encoding: 'utf8' }))).toEqual([true, true, 'Not Found', false]);
  });

  it('a getter is read when its name is imported (tls.rootCertificates)', () => {
    writeFileSync(join(dir, 'tls.mjs'), builtinModuleSource('node:tls'));
    expect(run(`import { rootCertificates } from './tls.mjs'; console.log(JSON.stringify(rootCertificates.length > 10));`)).toBe(true);
  });

  it('serves the built-in modules whose exports have getters, never node:module (the bundler runtime imports it first)', () => {
    expect(['node:http', 'node:tls', 'node:crypto', 'node:fs', 'node:util', 'node:process'].filter(served)).toHaveLength(6);
    expect(['node:module', 'node:path', 'node:os', 'node:child_process'].filter(served)).toEqual([]);
  });

  it('names a module this Node does not have', () => {
    expect(() => builtinModuleSource('node:no-such-module')).toThrow(/node:no-such-module is not a built-in module/);
  });
});
