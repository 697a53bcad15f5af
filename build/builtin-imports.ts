/**
 * ES-module imports of Node's built-in modules, as the bundle makes them: through `process.getBuiltinModule()`.
 *
 * Node builds the ES-module face of a built-in module by reading every property of its exports object, getters
 * included, and some getters load a lot: `import { createServer } from 'node:http'` (or `import http from ...`)
 * reads `http.WebSocket`, `CloseEvent` and `MessageEvent`, which load Node's internal copy of undici, its WHATWG
 * streams and http2: 44 -> 57 MiB resident in a bare process, where `require('node:http')` stays at 44. The same holds
 * for `tls.rootCertificates` (parses every bundled root certificate), `crypto.webcrypto`, `fs.promises` and others.
 * In the bundle an ES import of a built-in module resolves to a module of ours that takes the exports object from
 * `process.getBuiltinModule()` (which reads nothing) and exports its default and, by name, each property: plain values
 * as they are, getters read only where some module imports that name (the bundler drops the unused exports: the module
 * is declared free of side effects). CommonJS `require()` calls are left alone: they never built the ES face.
 * The exports are the values at load time, as Node's ES face holds them until `module.syncBuiltinESMExports()`.
 */
import { isBuiltin } from 'node:module';
import type { Plugin } from 'rolldown';

const PREFIX = '\0kube-proxy-ts:builtin:';
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The module text for one built-in module (pure but for reading the built-in's export names in this process). */
export function builtinModuleSource(name: string): string {
  const m = process.getBuiltinModule(name) as Record<string, unknown> | undefined;
  if (m === undefined) throw new Error(`${name} is not a built-in module of this Node`);
  const names = Object.keys(Object.getOwnPropertyDescriptors(m)).filter((k) => IDENTIFIER.test(k) && k !== 'default');
  return [
    `const m = process.getBuiltinModule(${JSON.stringify(name)});`,
    'export default m;',
    ...names.map((k) => `export const ${k} = /* @__PURE__ */ (() => m.${k})();`),
    '',
  ].join('\n');
}

/** Whether an ES import of this built-in module (node:NAME) goes through builtinModuleSource. */
export function served(name: string): boolean {
  if (name === 'node:module') return false;
  const m = process.getBuiltinModule(name) as object | undefined;
  return m !== undefined && Object.values(Object.getOwnPropertyDescriptors(m)).some((d) => d.get !== undefined);
}

/** The rolldown plugin. */
export function builtinImports(): Plugin {
  return {
    name: 'builtin-imports',
    resolveId(source, _importer, extra) {
      if (extra.kind !== 'import-statement' || !isBuiltin(source)) return null;
      const name = source.startsWith('node:') ? source : `node:${source}`;
      if (!served(name)) return null;
      return { id: PREFIX + name, moduleSideEffects: false };
    },
    load(id) {
      return id.startsWith(PREFIX) ? builtinModuleSource(id.slice(PREFIX.length)) : null;
    },
  };
}
