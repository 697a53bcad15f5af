/**
 * `npm run build`: the agent executable as a bundle in dist/ (gitignored), what the image runs. From the sources Node
 * loads each of the ~1,400 files the agent imports as a module of its own: the idle agent was ~148 MiB resident; from
 * the bundle, the same code tree-shaken into a dozen chunks, ~110 (BENCHMARKS.md "The agent as a bundle"), and ~79
 * with what the plugins below leave out ("The idle agent, fifth pass"). It needs no node_modules at run time.
 *
 *   dist/kube-proxy-ts.mjs   src/entry.js: turns Node's compile cache on, then imports main.mjs (src/entry.js says why)
 *   dist/main.mjs            src/main.ts and everything it imports, the dependencies included; the subcommands other
 *                            than the agent (render, diff, trace, top) in chunks of their own, loaded on demand
 *   dist/callers.json        where each chunk's logging calls came from (file and line in the sources), for the log
 *                            lines' caller and --vmodule (build/callers.ts; the source maps it is made from are not kept)
 *   dist/THIRD-PARTY-LICENSES.txt  name, version, licence and licence text of every package bundled (node_modules,
 *                            where these files were, is not needed any more)
 *
 * The compile cache is ../node_modules/.cache/kube-proxy-ts-compile from the executable, as for src/entry.js: dist/
 * sits beside src/, so both use the same directory. Everything the bundle cannot carry fails the build: an import
 * the bundler cannot resolve (rolldown's warnings are errors here), and each construct build/bundle-checks.ts lists.
 *
 * `node build/bundle.ts [OUT_DIR]` (default dist/); buildBundle() for tests and benches.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build, type OutputChunk, type RolldownLog } from 'rolldown';
import { bundleProblems } from './bundle-checks.ts';
import { builtinImports } from './builtin-imports.ts';
import { chunkCallers } from './callers.ts';
import { CALLERS_FILE, type ChunkCallers } from '../src/log.ts';
import { clientNodeTrim } from './client-node-trim.ts';
import { undiciTrim } from './undici-trim.ts';

const ROOT = resolve(import.meta.dirname, '..');
export const EXECUTABLE = 'kube-proxy-ts.mjs';
const LICENSES = 'THIRD-PARTY-LICENSES.txt';
/** The modules src/main.ts and src/commands.ts import lazily on the agent's path (the others serve render, diff, trace, top). */
const AGENT_PATH = ['src/system/stop-signals.ts', 'src/commands.ts', 'src/log.ts', 'src/cmd/run.ts'];

/** Each package some bundled module came from (its folder under node_modules): name, version, licence, licence files. */
function thirdPartyLicenses(moduleIds: readonly string[]): string {
  const packages = new Set<string>();
  for (const id of moduleIds) {
    const m = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(id);
    if (m) packages.add(m[1]!);
  }
  return [...packages]
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
      const texts = readdirSync(dir)
        .filter((f) => /^(licen[cs]e|copying|notice)/i.test(f))
        .map((f) => readFileSync(join(dir, f), 'utf8').trim());
      return `${pkg.name} ${pkg.version} (${pkg.license ?? 'no licence field'})\n\n${texts.join('\n\n') || '(no licence file in the package)'}\n`;
    })
    .toSorted()
    .join(`\n${'-'.repeat(80)}\n\n`);
}

export interface BundleResult {
  /** Absolute path of the executable (OUT_DIR/kube-proxy-ts.mjs). */
  readonly executable: string;
  /**
   * The chunks the agent loads (main.mjs, its static imports, and the lazy ones main.ts and commands.ts import on the
   * agent's path: stop-signals, commands, log, cmd/run), with their static imports: for measuring what they cost.
   */
  readonly agentChunks: readonly string[];
  /** Every file written, with its size in bytes. */
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
}

export interface BundleOptions {
  /** The checkout to bundle (its src/entry.js and src/main.ts); default this one. */
  readonly root?: string;
  /** Where the bundle goes; replaced as a whole (written beside it, then renamed). Default: the repository's dist/. */
  readonly outDir?: string;
  /** One file for main.ts and every subcommand (no lazy chunks), for comparisons (BENCHMARKS.md: the idle agent the same, render heavier); default false. */
  readonly singleFile?: boolean;
}

export async function buildBundle(opts: BundleOptions = {}): Promise<BundleResult> {
  const root = resolve(opts.root ?? ROOT);
  const outDir = resolve(opts.outDir ?? join(root, 'dist'));
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(outDir), { recursive: true });
  const warnings: string[] = [];
  const onLog = (level: string, log: RolldownLog): void => {
    if (level === 'warn') warnings.push(`${log.code ?? 'warning'}: ${log.message}`);
  };
  // bundlerTimings off: rolldown's report of slow plugin callbacks (client-node-trim's checks take ~1-2 s on a loaded
  // machine) is a warning, and warnings fail this build; it says nothing about the bundle.
  const common = { cwd: root, platform: 'node', logLevel: 'info', onLog, checks: { bundlerTimings: false } } as const;
  const trim = clientNodeTrim((id) => readFileSync(id, 'utf8'));
  try {
    const main = await build({
      ...common,
      input: join(root, 'src/main.ts'),
      write: true,
      plugins: [trim.plugin, undiciTrim((path) => readFileSync(path, 'utf8')), builtinImports()],
      treeshake: { moduleSideEffects: trim.moduleSideEffects },
      // keepNames: functions and classes keep their `name` (error names in metrics and logs, client-node's classes),
      // which renaming colliding top-level bindings would otherwise change. No comments: V8 keeps every module's
      // source text, and the dependencies' comments are ~0.8 MB of it (~1.5 MiB resident; the licences are in
      // THIRD-PARTY-LICENSES.txt). Not minified: removing whitespace or mangling would save 1-2.5 MiB more, at the
      // price of stack traces that point at line 1 or name no function (BENCHMARKS.md "The agent as a bundle").
      output: {
        dir: tmp,
        format: 'esm',
        keepNames: true,
        comments: false,
        entryFileNames: 'main.mjs',
        chunkFileNames: '[name]-[hash].mjs',
        // V8 keeps each module's source text, one byte per character when every character is Latin-1, two bytes
        // otherwise: one `✅` in a dependency's message doubled the 1.6 MB chunk with client-node (escaped, it is
        // one byte per character; checked below).
        charset: 'ascii',
        codeSplitting: !opts.singleFile,
        // Read for callers.json below, then removed: the maps are not shipped.
        sourcemap: 'hidden',
      },
    });
    const entry = await build({
      ...common,
      input: join(root, 'src/entry.js'),
      write: true,
      plugins: [
        {
          name: 'main-is-bundled',
          resolveId: (source, importer) =>
            source === './main.ts' && importer === join(root, 'src/entry.js') ? { id: './main.mjs', external: true } : null,
        },
      ],
      output: { dir: tmp, format: 'esm', entryFileNames: EXECUTABLE },
    });
    if (warnings.length > 0) throw new Error(`the bundler could not follow everything:\n${warnings.join('\n')}`);
    const chunks = [...main.output, ...entry.output].filter((o): o is OutputChunk => o.type === 'chunk');
    const problems = chunks.flatMap((c) => Object.entries(c.modules).flatMap(([id, m]) => bundleProblems(id, m.code ?? '')));
    if (problems.length > 0)
      throw new Error(
        `the bundle would not run without node_modules (build/bundle-checks.ts):\n${problems.map((p) => `  ${p.what} in ${p.module}`).join('\n')}`,
      );
    const wide = chunks
      .filter((c) => /[^\u0000-\u00ff]/.test(c.code))
      .map((c) => `${c.fileName} (${JSON.stringify(/.{0,30}[^\u0000-\u00ff]/.exec(c.code)?.[0])})`);
    if (wide.length > 0)
      throw new Error(`characters beyond Latin-1 left in (V8 would keep these chunks two bytes per character): ${wide.join(', ')}`);
    if (!entry.output.some((o) => o.type === 'chunk' && o.fileName === EXECUTABLE && o.imports.length === 1 && o.dynamicImports[0] === './main.mjs'))
      throw new Error(`${EXECUTABLE} should only turn the compile cache on and import ./main.mjs`);
    chmodSync(join(tmp, EXECUTABLE), 0o755);
    const callers: Record<string, ChunkCallers> = {};
    for (const c of main.output)
      if (c.type === 'chunk' && c.map) {
        const calls = chunkCallers(c.code, c.map, { mapDir: tmp, root });
        if (Object.keys(calls).length > 0) callers[c.fileName] = calls;
        rmSync(join(tmp, `${c.fileName}.map`), { force: true });
      }
    writeFileSync(join(tmp, CALLERS_FILE), JSON.stringify(callers));
    writeFileSync(join(tmp, LICENSES), thirdPartyLicenses(chunks.flatMap((c) => c.moduleIds)));
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
    const byName = new Map(chunks.map((c) => [c.fileName, c]));
    const agentChunks = new Set<string>();
    const add = (name: string): void => {
      if (agentChunks.has(name)) return;
      agentChunks.add(name);
      for (const i of byName.get(name)?.imports ?? []) if (byName.has(i)) add(i);
    };
    add('main.mjs');
    for (const c of chunks) if (AGENT_PATH.some((m) => c.facadeModuleId === join(root, m))) add(c.fileName);
    return {
      executable: join(outDir, EXECUTABLE),
      agentChunks: [...agentChunks].map((name) => join(outDir, name)),
      files: [...chunks.map((c) => c.fileName), LICENSES, CALLERS_FILE].map((name) => ({ name, bytes: statSync(join(outDir, name)).size })),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Warms the compile cache a bundle's executable turns on (as the Dockerfile does at build time): every chunk but the
 * two entries imported once (none acts on import), then `--help` through the executable. With the agent's node flags
 * (V8 rejects code cached under other flags) and environment (NODE_COMPILE_CACHE, when set, names the directory).
 */
export function warmBundleCache(executable: string, nodeFlags: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const dir = dirname(executable);
  const cache = env['NODE_COMPILE_CACHE'] || join(dir, '../node_modules/.cache/kube-proxy-ts-compile');
  const chunks = readdirSync(dir).filter((f) => f.endsWith('.mjs') && f !== EXECUTABLE && f !== 'main.mjs');
  const code = `import { enableCompileCache } from 'node:module'; enableCompileCache(${JSON.stringify(cache)}); ${chunks.map((f) => `await import(${JSON.stringify(join(dir, f))});`).join(' ')}`;
  execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', code], { env, stdio: 'ignore' });
  execFileSync(process.execPath, [...nodeFlags, executable, '--help'], { env, stdio: 'ignore' });
}

if (import.meta.main) {
  const t0 = performance.now();
  const r = await buildBundle(process.argv[2] ? { outDir: process.argv[2] } : {});
  const total = r.files.reduce((a, f) => a + f.bytes, 0);
  console.log(`${r.executable}: ${r.files.length} files, ${(total / 1e6).toFixed(2)} MB, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const f of r.files.toSorted((a, b) => b.bytes - a.bytes)) console.log(`  ${(f.bytes / 1e3).toFixed(1).padStart(8)} kB  ${f.name}`);
}
