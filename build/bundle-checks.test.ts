import { describe, expect, it } from 'vitest';
import { bundleProblems } from './bundle-checks.ts';

const DEP = '/repo/node_modules/some-dep/index.js';

describe('bundleProblems: what would not run from dist/ without node_modules', () => {
  it('accepts requires of Node built-ins, with or without node:', () => {
    expect(bundleProblems(DEP, 'const a = __require("node:fs"); const b = __require("http"); const c = require("util");')).toEqual([]);
  });

  it('names a require the bundler left in place (a package it could not find)', () => {
    expect(bundleProblems(DEP, 'let x; try { x = __require("left-pad"); } catch {}')).toEqual([{ module: DEP, what: 'require("left-pad")' }]);
  });

  it('names a require of a computed name and require.resolve', () => {
    expect(bundleProblems(DEP, 'const m = __require(name); const p = require.resolve("x/worker.js");')).toEqual([
      { module: DEP, what: 'require(name)' },
      { module: DEP, what: 'require.resolve' },
    ]);
  });

  it('names __dirname, __filename and import.meta (a file next to the module)', () => {
    const code = 'readFileSync(join(__dirname, "data.json")); new URL("./x", import.meta.url); console.log(__filename);';
    expect(bundleProblems(DEP, code).map((p) => p.what)).toEqual(['__dirname', 'import.meta', '__filename']);
  });

  it('accepts a typeof guard, property names and words in strings and comments', () => {
    const code = [
      'const f = typeof __filename !== "undefined" ? __filename : void 0;',
      'if (typeof __dirname === "string") {}',
      'o.__dirname = 1; const k = { __filename: 2 };',
      '// __dirname in a comment, require("nope") too',
      'const s = "__dirname and require(\\"nope\\") in a string";',
    ].join('\n');
    expect(bundleProblems(DEP, code)).toEqual([]);
  });

  it('accepts only what ALLOWED lists, in the module it names', () => {
    const pinoTransport = '/repo/node_modules/pino/lib/transport.js';
    expect(bundleProblems(pinoTransport, 'target = join(__dirname, "worker.js");')).toEqual([]);
    expect(bundleProblems(pinoTransport, 'target = join(__filename, "worker.js");')).toEqual([{ module: pinoTransport, what: '__filename' }]);
    const ws = '/repo/node_modules/ws/lib/buffer-util.js';
    expect(bundleProblems(ws, 'try { __require("bufferutil"); } catch {}')).toEqual([]);
    expect(bundleProblems(DEP, 'try { __require("bufferutil"); } catch {}')).toEqual([{ module: DEP, what: 'require("bufferutil")' }]);
    expect(bundleProblems('/repo/src/main.ts', 'new URL("../node_modules/.cache/x", import.meta.url)')).toEqual([]);
    expect(bundleProblems('/repo/src/agent.ts', 'new URL("./x", import.meta.url)')).toEqual([{ module: '/repo/src/agent.ts', what: 'import.meta' }]);
  });
});
