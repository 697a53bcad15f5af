/**
 * The bundle's subset of undici (build/undici-trim.ts): the exports client-node imports make undici's own objects, and
 * the check that index.js still defines them so fails on a changed index.js. build/bundle.test.ts checks that loading
 * the agent's chunks runs none of undici.
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

  it("constructs undici's own Agent and ProxyAgent, and gives a fetch that works through an Agent and fails as undici's does", async () => {
    const file = join(dir, 'subset.cjs');
    writeFileSync(file, undiciSubset(dirname(INDEX)));
    const subset = require(file) as { fetch: typeof fetch; Agent: new (o?: object) => object; ProxyAgent: new (o: object) => object };
    const undici = require('undici') as { Agent: new () => object; ProxyAgent: new () => object };
    expect(new subset.Agent()).toBeInstanceOf(undici.Agent);
    expect(new subset.ProxyAgent({ uri: 'http://proxy.example:3128' })).toBeInstanceOf(undici.ProxyAgent);
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
