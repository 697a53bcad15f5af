/**
 * The bundle (`npm run build`, what the image runs) behaves as the sources do: each subcommand that needs no root or
 * live rules, run from a freshly built bundle and from src/entry.js, gives the same exit code, the same stdout byte
 * for byte and the same stderr (log timestamps and pids aside; each log line names the same source file and line). The bundle runs from a temporary directory with no
 * node_modules above it: it needs none. test/bundle.e2e.test.ts runs the agent itself from it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle, EXECUTABLE, type BundleResult } from './bundle.ts';

const ROOT = join(import.meta.dirname, '..');
const SOURCES = join(ROOT, 'src/entry.js');
let dir: string;
let bundle: BundleResult;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(executable: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--max-semi-space-size=2', executable, ...args], { cwd: ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({
        code: err ? ((err as { code?: number }).code ?? 1) : 0,
        stdout,
        // Log times aside, and in klog's header the pid. The caller (file:line) stays: the bundle names the sources' lines.
        stderr: stderr.replace(/"time":"[^"]+"/g, '"time":"-"').replace(/^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ /gm, '$1 '),
      }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kpt-bundle-'));
  bundle = await buildBundle({ outDir: join(dir, 'dist') });
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const RENDER = ['--objects', 'examples/cluster.yaml', '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16'];
const CASES: Record<string, readonly string[]> = {
  help: ['--help'],
  'render, iptables': ['render', ...RENDER],
  'render, nftables': ['render', '--mode', 'nftables', ...RENDER],
  'render, IPv6 only': ['render', '--ip-family', 'IPv6', ...RENDER],
  'render, a missing file': ['render', '--objects', 'examples/no-such-file.yaml'],
  'trace through rendered rules': ['trace', ...RENDER, '--src', '10.244.1.5', '--dst', '10.96.0.10:80'],
  'trace, nftables': ['trace', '--mode', 'nftables', ...RENDER, '--src', '10.244.1.5', '--dst', '10.96.0.10:80'],
  'diff, a wrong flag': ['diff', '--no-such-flag'],
  'top, a wrong flag': ['top', '--no-such-flag'],
  'an unknown command': ['frobnicate'],
  'the agent, a wrong flag': ['--no-such-flag'],
  'the agent, --version (not a kube-proxy-ts flag)': ['--version'],
  'the agent, a missing config file': ['--config', '/nonexistent/kube-proxy.conf'],
  'the agent, a bad flag value': ['--mode', 'ipvs', '--hostname-override', 'node-1'],
};

describe('the bundle against src/entry.js', { timeout: 60_000 }, () => {
  it('is an executable that turns the compile cache on, then imports main.mjs', () => {
    const text = readFileSync(bundle.executable, 'utf8');
    expect(text.split('\n')[0]).toBe('#!/usr/bin/env -S node --max-semi-space-size=2');
    expect(text).toMatch(/enableCompileCache\([^]*\);\s*await import\("\.\/main\.mjs"\);/);
    expect(readdirSync(join(dir, 'dist'))).toEqual(expect.arrayContaining([EXECUTABLE, 'main.mjs', 'callers.json']));
    // The source maps callers.json is made from are not shipped.
    expect(readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(existsSync(join(dir, 'node_modules', 'pino'))).toBe(false);
  });

  it.each(Object.entries(CASES))('%s: same exit code, stdout and stderr', async (_, args) => {
    const [fromBundle, fromSources] = await Promise.all([run(bundle.executable, args), run(SOURCES, args)]);
    expect(fromBundle).toEqual(fromSources);
  });

  it('renders the example byte for byte as the sources do (and renders something)', async () => {
    const fromBundle = await run(bundle.executable, ['render', ...RENDER]);
    expect(fromBundle.code).toBe(0);
    expect(fromBundle.stdout).toContain('-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP"');
  });

  it('writes the effective configuration as the sources do (--write-config-to)', async () => {
    const out = (name: string) => join(dir, name);
    const args = (file: string) => [
      '--hostname-override',
      'node-1',
      '--cluster-cidr',
      '10.244.0.0/16',
      '--mode',
      'nftables',
      '--write-config-to',
      file,
    ];
    const [a, b] = await Promise.all([run(bundle.executable, args(out('bundle.yaml'))), run(SOURCES, args(out('sources.yaml')))]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(readFileSync(out('bundle.yaml'), 'utf8')).toBe(readFileSync(out('sources.yaml'), 'utf8'));
    expect(readFileSync(out('bundle.yaml'), 'utf8')).toContain('mode: nftables');
  });

  it("carries none of client-node's generated model classes on the agent's path (build/client-node-trim.ts)", () => {
    const code = bundle.agentChunks.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(code).toContain('class KubeConfig');
    expect(code).toContain('the substitute for client-node ListWatch serializer');
    expect(code).not.toMatch(/attributeTypeMap|class V1PodSpec|class V1Service\b/);
  });

  it("runs neither undici nor Node's internal copy nor webcrypto when the agent's chunks load (build/builtin-imports.ts, build/undici-trim.ts), and keeps each chunk's source one byte per character", async () => {
    const chunks = bundle.agentChunks.filter((f) => !f.endsWith('/main.mjs'));
    const code = `${chunks.map((f) => `await import(${JSON.stringify(f)});`).join(' ')}
      console.log(JSON.stringify([...process.moduleLoadList, ...(globalThis[Symbol.for('undici.globalDispatcher.2')] ? ['undici evaluated'] : [])]));`;
    const loaded = JSON.parse(
      await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--input-type=module', '-e', code], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      ),
    ) as string[];
    expect(loaded).toContain('NativeModule https');
    expect(loaded.filter((m) => /internal\/deps\/undici|internal\/crypto\/webcrypto/.test(m))).toEqual([]);
    // undici's lib/global.js, run by any use of undici, sets this; nothing on the agent's path uses undici (build/undici-trim.ts).
    expect(loaded).not.toContain('undici evaluated');
    for (const f of chunks) expect(readFileSync(f, 'utf8')).not.toMatch(/[^\u0000-\u00ff]/);
  });

  it('keeps its compile cache in node_modules/.cache beside dist/, as src/entry.js does beside src/', () => {
    expect(readdirSync(join(dir, 'node_modules/.cache/kube-proxy-ts-compile')).length).toBeGreaterThan(0);
  });
});

describe('a build that cannot find something', () => {
  it('fails the build, naming the import (not the agent at run time)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kpt-bundle-broken-'));
    try {
      mkdirSync(join(root, 'src'));
      writeFileSync(join(root, 'src/entry.js'), "await import('./main.ts');\n");
      writeFileSync(join(root, 'src/main.ts'), "import { x } from 'no-such-package';\nconsole.log(x);\n");
      await expect(buildBundle({ root, outDir: join(root, 'dist') })).rejects.toThrow(/UNRESOLVED_IMPORT[^]*no-such-package/);
      expect(existsSync(join(root, 'dist'))).toBe(false);
      writeFileSync(join(root, 'src/main.ts'), "let x; try { x = require('no-such-package'); } catch {}\nconsole.log(x, __dirname);\n");
      await expect(buildBundle({ root, outDir: join(root, 'dist') })).rejects.toThrow(
        /require\("no-such-package"\) in .*src\/main\.ts[^]*__dirname in .*src\/main\.ts/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
