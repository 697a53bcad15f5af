/**
 * What a bundle must not contain to run without node_modules: the checks `npm run build` applies to each module's
 * rendered code (build/bundle.ts), so that a dependency the bundler could not follow fails the build, not the agent.
 * Pure: (module id, code) in, problems out.
 *
 * A bundle runs from dist/, far from the package files its modules came from, so each of these breaks it:
 * - a `require("x")` the bundler left in place (it could not resolve x: CommonJS requires of missing packages are kept
 *   silently, unlike ESM imports, which rolldown reports), other than Node's built-in modules;
 * - a `require(variable)` or `require.resolve(...)`: whatever it names is not in the bundle;
 * - `__dirname` / `__filename` (undefined in an ES module: a ReferenceError when reached) and `import.meta`
 *   (now dist/'s URL), typically a module reading a file next to itself.
 * The few places that do this on paths kube-proxy-ts never takes are listed in ALLOWED, each with the reason.
 */
import { isBuiltin } from 'node:module';
import { parseAst } from 'rolldown/parseAst';

export interface Allowance {
  /** Matches the module id (its path under node_modules, or the source file). */
  readonly module: RegExp;
  /** The exact construct allowed there: `require("name")`, `__dirname`, `__filename`, `import.meta`. */
  readonly what: string;
  readonly why: string;
}

export const ALLOWED: readonly Allowance[] = [
  {
    module: /node_modules\/ws\/lib\/(buffer-util|validation)\.js$/,
    what: 'require("bufferutil")',
    why: "ws's optional native speed-up, required inside try/catch; ws falls back to JavaScript when it is missing",
  },
  {
    module: /node_modules\/ws\/lib\/(buffer-util|validation)\.js$/,
    what: 'require("utf-8-validate")',
    why: "ws's optional native UTF-8 check, required inside try/catch; ws falls back to Node's buffer.isUtf8",
  },
  {
    module: /node_modules\/debug\/src\/node\.js$/,
    what: 'require("supports-color")',
    why: "debug's optional colour detection, required inside try/catch",
  },
  {
    module: /node_modules\/pino\/lib\/transport\.js$/,
    what: '__dirname',
    why: 'pino.transport() (worker-thread log transports) only; kube-proxy-ts logs through pino.destination (src/log.ts)',
  },
  {
    module: /node_modules\/thread-stream\/index\.js$/,
    what: '__dirname',
    why: "thread-stream's worker, started by pino.transport() only (see pino/lib/transport.js)",
  },
  {
    module: /src\/(entry\.js|main\.ts)$/,
    what: 'import.meta',
    why: "the compile cache's directory, ../node_modules/.cache from the module: dist/ sits beside src/, so it is the same one",
  },
  {
    module: /src\/log\.ts$/,
    what: 'import.meta',
    why: 'callers.json, which the build writes beside the chunks (build/callers.ts); from the sources there is none, and the logger names the file it runs',
  },
  { module: /^\0rolldown\/runtime\.js$/, what: 'import.meta', why: "the bundler's require (createRequire) for Node's built-in modules" },
];

export interface Problem {
  readonly module: string;
  readonly what: string;
}

type Node = { readonly type: string; readonly [key: string]: unknown };
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';

/** Every construct in one module's rendered code that could not work from the bundle, unless ALLOWED. */
export function bundleProblems(module: string, code: string): Problem[] {
  const found = new Set<string>();
  const visit = (node: Node, parent: Node | null, key: string): void => {
    switch (node.type) {
      case 'CallExpression': {
        const callee = node['callee'] as Node;
        const [arg] = node['arguments'] as Node[];
        if (callee.type === 'Identifier' && (callee['name'] === '__require' || callee['name'] === 'require')) {
          if (arg?.type === 'Literal' && typeof arg['value'] === 'string') {
            if (!isBuiltin(arg['value'])) found.add(`require("${arg['value']}")`);
          } else found.add(`require(${arg ? code.slice(arg['start'] as number, arg['end'] as number) : ''})`);
        }
        break;
      }
      case 'MemberExpression': {
        const object = node['object'] as Node;
        const property = node['property'] as Node;
        if (object.type === 'Identifier' && /^(__)?require$/.test(object['name'] as string) && property['name'] === 'resolve')
          found.add('require.resolve');
        break;
      }
      case 'MetaProperty':
        found.add('import.meta');
        break;
      case 'Identifier': {
        const name = node['name'];
        if (name !== '__dirname' && name !== '__filename') break;
        // A reference, not a property name or key; `typeof __filename` is a guard that works in an ES module (undici's fetch).
        const propertyName =
          (parent?.type === 'MemberExpression' && key === 'property' && !parent['computed']) || (parent?.type === 'Property' && key === 'key');
        const guarded = parent?.type === 'UnaryExpression' && parent['operator'] === 'typeof';
        if (!propertyName && !guarded && !isGuardedUse(parent, name)) found.add(name);
        break;
      }
    }
    for (const [k, v] of Object.entries(node)) {
      if (Array.isArray(v)) for (const c of v) isNode(c) && visit(c, node, k);
      else if (isNode(v)) visit(v, node, k);
    }
  };
  visit(parseAst(code, { lang: 'js', sourceType: 'module' }) as unknown as Node, null, '');
  return [...found].filter((what) => !ALLOWED.some((a) => a.what === what && a.module.test(module))).map((what) => ({ module, what }));
}

/** `typeof X !== "undefined" ? X : ...`: the consequent of a conditional whose test is that guard. */
function isGuardedUse(parent: Node | null, name: string): boolean {
  if (parent?.type !== 'ConditionalExpression') return false;
  const test = parent['test'] as Node;
  const left = test['left'] as Node | undefined;
  return (
    test.type === 'BinaryExpression' &&
    left?.type === 'UnaryExpression' &&
    left['operator'] === 'typeof' &&
    (left['argument'] as Node)['name'] === name
  );
}
