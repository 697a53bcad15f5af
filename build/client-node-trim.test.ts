/**
 * The checks that make the bundle's trimming of client-node safe (build/client-node-trim.ts), on client-node's real
 * modules and on the changes a release could bring; build/bundle.test.ts checks the result (no model class in the
 * agent's chunks) and test/bundle.e2e.test.ts runs the trimmed agent, selectors included, against the fake API server.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheSerializerUses, impureStatements, SERIALIZER_SUBSTITUTE } from './client-node-trim.ts';

const DIST = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')));
const read = (f: string): string => readFileSync(join(DIST, f), 'utf8');

describe("ListWatch's serializer (cache.js)", () => {
  it('client-node uses it for the label and field selectors only, which the substitute serves', () => {
    expect(read('cache.js')).toContain("ObjectSerializer.serialize(this.labelSelector, 'string')");
    expect(cacheSerializerUses(read('cache.js'))).toEqual([]);
  });

  it('a release that uses it for anything else is named (the build fails)', () => {
    const changed = `${read('cache.js')}\nconst obj = ObjectSerializer.deserialize(item, 'V1Pod');\n`;
    expect(cacheSerializerUses(changed)).toEqual(["const obj = ObjectSerializer.deserialize(item, 'V1Pod');"]);
  });

  it('the substitute returns a selector as the real serializer does, and refuses anything else', async () => {
    const { ObjectSerializer: Substitute } = (await import(`data:text/javascript,${encodeURIComponent(SERIALIZER_SUBSTITUTE)}`)) as {
      ObjectSerializer: { serialize(data: unknown, type: string): unknown };
    };
    const { ObjectSerializer } = (await import(join(DIST, 'serializer.js'))) as {
      ObjectSerializer: { serialize(data: unknown, type: string): unknown };
    };
    for (const selector of ['!service.kubernetes.io/service-proxy-name', 'metadata.name=node-1', undefined])
      expect(Substitute.serialize(selector, 'string')).toBe(ObjectSerializer.serialize(selector, 'string'));
    expect(() => Substitute.serialize({ kind: 'Pod' }, 'V1Pod')).toThrow(/selectors \(strings\) only, not V1Pod/);
    expect(() => Substitute.serialize({}, 'string')).toThrow(/selectors/);
  });
});

describe('impureStatements: what client-node modules declared free of side effects may do on import', () => {
  it.each(['gen/models/V1Pod.js', 'gen/models/ObjectSerializer.js', 'gen/servers.js', 'gen/index.js', 'gen/apis/CoreV1Api.js', 'serializer.js'])(
    "client-node's %s only declares",
    (f) => expect(impureStatements(read(f))).toEqual([]),
  );

  it('static fields and calls of what the module declares itself are pure', () => {
    const code = [
      "import { x } from './x.js';",
      'export class A {}',
      "A.attributeTypeMap = [{ name: 'a', type: 'string' }, -1, void 0];",
      'A.mapping = undefined;',
      'function factory(t) { return () => t; }',
      "const isText = factory('text');",
      "export const server1 = new A('', {});",
      'const known = new Set(["a"]);',
      'export * from "./y.js";',
    ].join('\n');
    expect(impureStatements(code)).toEqual([]);
  });

  it('names a bare call, a call of an import, a field set on an import, a static block and a computed key', () => {
    const code = [
      "import { register, Registry } from './registry.js';",
      "console.log('loaded');",
      'export const r = register();',
      'Registry.models = [];',
      'class B { static { register(); } }',
      'class C { [register()]() {} }',
    ].join('\n');
    expect(impureStatements(code)).toEqual([
      "console.log('loaded');",
      'export const r = register();',
      'Registry.models = [];',
      'class B { static { register(); } }',
      'class C { [register()]() {} }',
    ]);
  });
});
