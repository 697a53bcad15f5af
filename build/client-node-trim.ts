/**
 * What the bundle leaves out of @kubernetes/client-node, and the checks that make leaving it out safe. The agent
 * uses client-node's KubeConfig, Watch, ListWatch and HTTP library; it uses none of the ~700 generated model classes
 * (it lists and watches raw JSON: src/sources/kube-list.ts, src/sources/kube-request.ts). From the sources, importing
 * client-node evaluates every one of them (their attribute tables live in the heap as long as the agent runs); in
 * the bundle two things keep them out, and together they take the modules the agent loads from 78 to 73 MiB
 * resident (BENCHMARKS.md "The idle agent, fifth pass"):
 *
 * - ListWatch (dist/cache.js) imports client-node's ObjectSerializer only to pass its label and field selectors
 *   through `ObjectSerializer.serialize(selector, 'string')`, which returns a string as it is; that import alone
 *   reaches the generated ObjectSerializer and every model. In the bundle cache.js gets SERIALIZER_SUBSTITUTE, which
 *   does what the real one does for strings and throws for anything else. The build first checks that cache.js uses
 *   its serializer for those two selectors and nothing more (cacheSerializerUses), so a client-node release that
 *   changes this fails the build instead of shipping a substitute that would do the wrong thing. build/bundle.test.ts
 *   checks that no model class is left in the chunks the agent loads.
 * - The generated modules (dist/gen/) and dist/serializer.js are declared free of side effects, so the bundler drops
 *   those no code uses. True of client-node 2.x: their only top-level statements are imports, exports, declarations
 *   and static fields set on a class the module declares (`V1Pod.attributeTypeMap = [...]`), initialised with
 *   literals or with calls of functions and classes the module itself declares (`new ServerConfiguration("", {})`,
 *   `mimeTypeSimplePredicateFactory('text')`: each returns an object or a closure). The build checks each such module
 *   it loads for that (impureStatements) and fails on anything else: a call of anything imported, a static block,
 *   a computed class key, a bare expression.
 */
import type { Plugin } from 'rolldown';
import { parseAst } from 'rolldown/parseAst';

const CACHE_MODULE = /[/\\]@kubernetes[/\\]client-node[/\\]dist[/\\]cache\.js$/;
const SIDE_EFFECT_FREE = /[/\\]@kubernetes[/\\]client-node[/\\]dist[/\\](gen[/\\].*|serializer)\.js$/;
const SUBSTITUTE_ID = '\0kube-proxy-ts:client-node-cache-serializer';

/** Every use of ObjectSerializer in cache.js that the substitute serves. */
const SERVED_USES = [
  "import { ObjectSerializer } from './serializer.js';",
  "ObjectSerializer.serialize(this.labelSelector, 'string')",
  "ObjectSerializer.serialize(this.fieldSelector, 'string')",
];

export const SERIALIZER_SUBSTITUTE = `export class ObjectSerializer {
  static serialize(data, type) {
    if (type !== 'string' || (data !== undefined && typeof data !== 'string'))
      throw new Error('kube-proxy-ts bundle: the substitute for client-node ListWatch serializer handles selectors (strings) only, not ' + type);
    return data;
  }
}
`;

/** The lines of cache.js that use ObjectSerializer other than as SERVED_USES (none: the substitute serves it). */
export function cacheSerializerUses(cacheSource: string): string[] {
  return cacheSource
    .split('\n')
    .filter((l) => l.includes('ObjectSerializer') && !SERVED_USES.some((u) => l.includes(u)))
    .map((l) => l.trim());
}

type Node = { readonly type: string; readonly start: number; readonly end: number; readonly [key: string]: unknown };

/** Whether a top-level statement only declares, or sets a field on a class this module declares. */
function pure(s: Node, classes: ReadonlySet<string>, locals: ReadonlySet<string>): boolean {
  const init = (n: Node): boolean => literalish(n, locals);
  switch (s.type) {
    case 'ImportDeclaration':
    case 'ExportAllDeclaration':
    case 'FunctionDeclaration':
    case 'EmptyStatement':
      return true;
    case 'ExportNamedDeclaration':
      return s['declaration'] == null || pure(s['declaration'] as Node, classes, locals);
    case 'ClassDeclaration':
      // Static blocks and computed keys can run code; the generated classes have neither.
      return !((s['body'] as { body: Node[] }).body ?? []).some((m) => m.type === 'StaticBlock' || m['computed'] === true);
    case 'VariableDeclaration':
      return (s['declarations'] as Node[]).every((d) => d['init'] == null || init(d['init'] as Node));
    case 'ExpressionStatement': {
      const e = s['expression'] as Node;
      if (e.type !== 'AssignmentExpression' || e['operator'] !== '=') return false;
      const left = e['left'] as Node;
      const object = left['object'] as Node | undefined;
      return left.type === 'MemberExpression' && object?.type === 'Identifier' && classes.has(object['name'] as string) && init(e['right'] as Node);
    }
    default:
      return false;
  }
}

/**
 * Literals, arrays and objects of those, identifiers, function expressions, and calls or `new` of Set, Map or of a
 * function or class the module declares (locals), with such arguments: nothing that reaches outside the module.
 */
function literalish(n: Node, locals: ReadonlySet<string>): boolean {
  const ok = (c: Node): boolean => literalish(c, locals);
  switch (n.type) {
    case 'Literal':
    case 'Identifier':
    case 'ArrowFunctionExpression':
    case 'FunctionExpression':
      return true;
    case 'UnaryExpression':
      return (n['operator'] === 'void' || n['operator'] === '-') && ok(n['argument'] as Node);
    case 'ArrayExpression':
      return (n['elements'] as (Node | null)[]).every((e) => e === null || ok(e));
    case 'ObjectExpression':
      return (n['properties'] as Node[]).every((p) => p.type === 'Property' && !p['computed'] && ok(p['value'] as Node));
    case 'NewExpression':
    case 'CallExpression': {
      const callee = n['callee'] as Node;
      const name = callee.type === 'Identifier' ? (callee['name'] as string) : '';
      const known = locals.has(name) || (n.type === 'NewExpression' && (name === 'Set' || name === 'Map'));
      return known && (n['arguments'] as Node[]).every(ok);
    }
    default:
      return false;
  }
}

/** The top-level statements of a module that could act on import (empty: dropping the module unused is safe). */
export function impureStatements(code: string): string[] {
  const body = (parseAst(code, { lang: 'js', sourceType: 'module' }) as unknown as { body: Node[] }).body;
  const declaration = (s: Node): Node => (s.type === 'ExportNamedDeclaration' && s['declaration'] ? (s['declaration'] as Node) : s);
  const declared = body.map(declaration);
  const classes = new Set(declared.filter((s) => s.type === 'ClassDeclaration').map((s) => (s['id'] as Node)['name'] as string));
  const locals = new Set(classes);
  for (const s of declared) {
    if (s.type === 'FunctionDeclaration') locals.add((s['id'] as Node)['name'] as string);
    if (s.type === 'VariableDeclaration')
      for (const d of s['declarations'] as Node[]) {
        const t = (d['init'] as Node | null)?.type;
        if (t === 'ArrowFunctionExpression' || t === 'FunctionExpression') locals.add((d['id'] as Node)['name'] as string);
      }
  }
  return body.filter((s) => !pure(s, classes, locals)).map((s) => code.slice(s.start, Math.min(s.end, s.start + 120)));
}

/** The rolldown plugin and treeshake option that apply the above; the plugin fails the build when a check does. */
export function clientNodeTrim(readSource: (id: string) => string): { plugin: Plugin; moduleSideEffects: (id: string) => boolean } {
  return {
    moduleSideEffects: (id) => !SIDE_EFFECT_FREE.test(id),
    plugin: {
      name: 'client-node-trim',
      resolveId(source, importer) {
        if (source !== './serializer.js' || !importer || !CACHE_MODULE.test(importer)) return null;
        const uses = cacheSerializerUses(readSource(importer));
        if (uses.length > 0)
          this.error(
            `client-node's cache.js uses its ObjectSerializer beyond selectors; build/client-node-trim.ts's substitute would not serve:\n  ${uses.join('\n  ')}`,
          );
        return SUBSTITUTE_ID;
      },
      load(id) {
        return id === SUBSTITUTE_ID ? SERIALIZER_SUBSTITUTE : null;
      },
      transform: {
        filter: { id: SIDE_EFFECT_FREE },
        handler(code, id) {
          const impure = impureStatements(code);
          if (impure.length > 0)
            this.error(`${id} is declared free of side effects (build/client-node-trim.ts) but acts on import:\n  ${impure.join('\n  ')}`);
          return null;
        },
      },
    },
  };
}
