#!/usr/bin/env -S node --max-semi-space-size=2
// kube-proxy-ts's executable (package.json "bin"; bundled by `npm run build` as dist/kube-proxy-ts.mjs, the image's
// ENTRYPOINT and its `kube-proxy-ts` on PATH, which imports dist/main.mjs instead of main.ts): plain
// JavaScript, so that Node's compile cache is on before the first TypeScript module loads. Node keeps each module's
// stripped TypeScript and V8 code there between runs (keyed by content: an edited file is compiled afresh), and a
// process whose every module comes from the cache never loads the type stripper (amaro, a WebAssembly build of swc:
// ~18 MiB resident for the agent's lifetime). `node src/main.ts` still works but always loads the stripper: main.ts
// itself is stripped before it can turn the cache on.
//
// The cache lives in the package's own node_modules/.cache (not a world-writable /tmp: the agent runs as root; for the
// bundle in dist/, the same directory); the image warms it at build time. NODE_COMPILE_CACHE chooses another
// directory, NODE_DISABLE_COMPILE_CACHE=1 turns it off; a directory that cannot be written just goes unused (the first
// run strips and compiles, as without a cache).
//
// --max-semi-space-size=2 caps V8's young generation: at 10,000 services the default lets the heap balloon to
// ~350 MB resident for ~120 MB of live data. The image also sets MALLOC_ARENA_MAX=1 (one glibc malloc arena for every
// thread: ~27 MiB less at 10,000 services, no measurable CPU; BENCHMARKS.md). glibc reads it when the process starts,
// so this file cannot set it for itself; outside the image operators set it in the agent's environment (README).
import { enableCompileCache } from 'node:module';

enableCompileCache(process.env['NODE_COMPILE_CACHE'] || new URL('../node_modules/.cache/kube-proxy-ts-compile', import.meta.url).pathname);
await import('./main.ts');
