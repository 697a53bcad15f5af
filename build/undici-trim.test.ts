/**
 * The bundle's subset of undici (build/undici-trim.ts): the exports client-node imports are undici's own, and the
 * check that they still are fails on a changed index.js. test/bundle.e2e.test.ts runs the agent built with it (its
 * watches and lists go through this fetch and Agent) against the fake API server over TLS.
 */
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingIndexLines, undiciSubset } from './undici-trim.ts';

const require = createRequire(import.meta.url);
const INDEX = require.resolve('undici');
const dir = mkdtempSync(join(tmpdir(), 'kpt-undici-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('undici-trim', () => {
  it("undici's index.js defines fetch, Agent and ProxyAgent as the subset repeats", () => {
    expect(missingIndexLines(readFileSync(INDEX, 'utf8'))).toEqual([]);
  });

  it('a release that defines them otherwise is named (the build fails)', () => {
    const changed = readFileSync(INDEX, 'utf8').replace("require('./lib/dispatcher/agent')", "require('./lib/dispatcher/agent-v2')");
    expect(missingIndexLines(changed)).toEqual(["const Agent = require('./lib/dispatcher/agent')"]);
  });

  it("gives undici's own Agent and ProxyAgent, and a fetch that works through an Agent and fails as undici's does", async () => {
    const file = join(dir, 'subset.mjs');
    writeFileSync(file, undiciSubset(dirname(INDEX)));
    const subset = (await import(file)) as { fetch: typeof fetch; Agent: new () => object; ProxyAgent: unknown };
    const undici = require('undici') as { Agent: unknown; ProxyAgent: unknown };
    expect(subset.Agent).toBe(undici.Agent);
    expect(subset.ProxyAgent).toBe(undici.ProxyAgent);
    const server = createServer((_, res) => res.end('pong')).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const dispatcher = new subset.Agent();
      const res = await subset.fetch(`http://127.0.0.1:${port}/`, { dispatcher } as RequestInit);
      expect(await res.text()).toBe('pong');
      const closed = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => closed.once('listening', r));
      const closedPort = (closed.address() as { port: number }).port;
      await new Promise((r) => closed.close(r));
      const err = (await subset.fetch(`http://127.0.0.1:${closedPort}/`, { dispatcher } as RequestInit).catch((e: unknown) => e)) as Error;
      expect(err.message).toBe('fetch failed');
      expect(String(err.cause)).toContain('ECONNREFUSED');
    } finally {
      server.close();
    }
  });
});
