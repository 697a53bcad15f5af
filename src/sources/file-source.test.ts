/**
 * --objects as a source: real files in a temporary directory, read by the
 * real reader and watched by fs.watch, turned into the same add/update/delete
 * events an API server's informers produce. A broken file keeps the last good
 * state; the slow poll catches what the watch misses.
 */
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeNode, makeService, makeServiceCIDR } from '../../test/builders.ts';
import { ManualClock } from '../../proxier/clock.ts';
import { realClock } from '../system/clock.ts';
import type { ObjectEvent, ObjectKind } from './events.ts';
import { createFileSource } from './file-source.ts';
import type { ParsedObjects } from './parse-objects.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-file-source-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const yaml = (docs: unknown[]) => docs.map((d) => dump(d)).join('---\n');
const web = (port = 80) => makeService('ns1', 'web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port, targetPort: 8080 }] });
const webSlice = (ip = '10.244.1.2') =>
  makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip, nodeName: 'node-1' }], ports: [{ name: 'http', port: 8080 }] });
const nodes = [makeNode('node-1', { addresses: ['192.168.50.11'] }), makeNode('node-2', { addresses: ['192.168.50.12'] })];

function recorder() {
  const events: ObjectEvent[] = [];
  const synced: ObjectKind[] = [];
  const problems: string[] = [];
  return {
    events,
    synced,
    problems,
    handlers: {
      onEvent: (e: ObjectEvent) => void events.push(e),
      onSynced: (k: ObjectKind) => void synced.push(k),
      onProblem: (_k: ObjectKind | null, message: string) => void problems.push(message),
    },
    summary: () => events.map((e) => `${e.type} ${e.kind} ${e.key}`).sort(),
  };
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('file source: first read', () => {
  it('emits an add per object, only its own Node, then synced for every kind', async () => {
    const file = join(dir, 'cluster.yaml');
    await writeFile(file, yaml([...nodes, web(), webSlice(), makeServiceCIDR('kubernetes', ['10.96.0.0/16'])]));
    const rec = recorder();
    const source = createFileSource({ path: file, nodeName: 'node-1', clock: realClock, debounceMs: 20 });
    await source.start(rec.handlers);
    await source.stop();
    expect(rec.summary()).toEqual(['add EndpointSlice ns1/web-1', 'add Node node-1', 'add Service ns1/web', 'add ServiceCIDR kubernetes']);
    expect(new Set(rec.synced)).toEqual(new Set(['Service', 'EndpointSlice', 'Node', 'ServiceCIDR']));
    expect(rec.problems).toEqual([]);
  });

  it('reports objects without a name and duplicates (the last one wins), and keeps the rest', async () => {
    const file = join(dir, 'cluster.yaml');
    const nameless = { ...web(), metadata: { namespace: 'ns1' } };
    await writeFile(file, yaml([nodes[0], web(80), web(81), nameless]));
    const rec = recorder();
    const source = createFileSource({ path: file, nodeName: 'node-1', clock: realClock });
    await source.start(rec.handlers);
    await source.stop();
    expect(
      rec.problems.some((p) => /Service ns1\/web appears twice/.test(p)),
      rec.problems.join('\n'),
    ).toBe(true);
    expect(
      rec.problems.some((p) => p.includes(`${file}:`) && /document 4.*has no metadata\.name/.test(p)),
      rec.problems.join('\n'),
    ).toBe(true);
    const svc = rec.events.find((e) => e.kind === 'Service')!;
    expect((svc.obj as { spec: { ports: { port: number }[] } }).spec.ports[0]!.port).toBe(81);
  });

  it('an unreadable path is a problem naming it, not a crash; synced is not signalled from nothing', async () => {
    const missing = join(dir, 'nope.yaml');
    const rec = recorder();
    const source = createFileSource({ path: missing, nodeName: 'node-1', clock: realClock });
    await source.start(rec.handlers);
    await source.stop();
    expect(rec.problems.join('\n')).toContain(missing);
    expect(rec.events).toEqual([]);
    expect(rec.synced).toEqual([]);
  });
});

describe('file source: changes', () => {
  it('an edited file becomes update, add and delete events for what changed, nothing for what did not', async () => {
    const file = join(dir, 'cluster.yaml');
    const other = makeService('ns1', 'other', { clusterIP: '10.96.0.11', ports: [{ port: 53, protocol: 'UDP' }] });
    const dns = makeService('ns2', 'dns', { clusterIP: '10.96.0.53', ports: [{ port: 53, protocol: 'UDP' }] });
    await writeFile(file, yaml([nodes[0], web(), webSlice(), other]));
    const rec = recorder();
    const source = createFileSource({ path: file, nodeName: 'node-1', clock: realClock, debounceMs: 20 });
    await source.start(rec.handlers);
    rec.events.length = 0;
    await writeFile(file, yaml([nodes[0], web(), webSlice('10.244.1.3'), dns]));
    await until(() => rec.events.length >= 3, 'the edit to be seen');
    await source.stop();
    expect(rec.summary()).toEqual(['add Service ns2/dns', 'delete Service ns1/other', 'update EndpointSlice ns1/web-1']);
    const update = rec.events.find((e) => e.type === 'update')!;
    expect(JSON.stringify(update.old)).toContain('10.244.1.2');
    expect(JSON.stringify(update.obj)).toContain('10.244.1.3');
  });

  it('a broken file keeps the last good state (no deletes) and a fixed one resumes from it', async () => {
    const file = join(dir, 'cluster.yaml');
    await writeFile(file, yaml([nodes[0], web(), webSlice()]));
    const rec = recorder();
    const source = createFileSource({ path: file, nodeName: 'node-1', clock: realClock, debounceMs: 20 });
    await source.start(rec.handlers);
    rec.events.length = 0;
    await writeFile(file, 'kind: Service\nmetadata: {name: [unclosed\n');
    await until(() => rec.problems.length > 0, 'the broken file to be reported');
    expect(rec.problems.at(-1)).toMatch(/keeping the last good state/);
    expect(rec.problems.at(-1)).toContain(file);
    expect(rec.events).toEqual([]);
    await writeFile(file, yaml([nodes[0], web(8080), webSlice()]));
    await until(() => rec.events.length > 0, 'the fixed file to be read');
    await source.stop();
    expect(rec.summary()).toEqual(['update Service ns1/web']);
  });

  it('a directory: a new file adds its objects, a removed file deletes them', async () => {
    await writeFile(join(dir, 'node.yaml'), yaml([nodes[0]]));
    const rec = recorder();
    const source = createFileSource({ path: dir, nodeName: 'node-1', clock: realClock, debounceMs: 20 });
    await source.start(rec.handlers);
    expect(rec.summary()).toEqual(['add Node node-1']);
    rec.events.length = 0;
    await writeFile(join(dir, 'web.yaml'), yaml([web(), webSlice()]));
    await until(() => rec.events.length >= 2, 'the new file');
    expect(rec.summary()).toEqual(['add EndpointSlice ns1/web-1', 'add Service ns1/web']);
    rec.events.length = 0;
    await unlink(join(dir, 'web.yaml'));
    await until(() => rec.events.length >= 2, 'the removal');
    await source.stop();
    expect(rec.summary()).toEqual(['delete EndpointSlice ns1/web-1', 'delete Service ns1/web']);
  });
});

describe('file source: a ConfigMap volume', () => {
  it("reads the files through kubelet's symlinks once each (not its ..data and ..<timestamp> entries) and follows its atomic update at the watch's pace", async () => {
    // kubelet's AtomicWriter layout: objects.yaml -> ..data/objects.yaml, ..data -> ..<timestamp>/.
    const version = async (name: string, docs: unknown[]) => {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'objects.yaml'), yaml(docs));
    };
    await version('..2026_12_04_20_00_00.1', [nodes[0], web(), webSlice()]);
    await symlink('..2026_12_04_20_00_00.1', join(dir, '..data'));
    await symlink('..data/objects.yaml', join(dir, 'objects.yaml'));
    const rec = recorder();
    // The poll is slower than the test: only the watch can see the update.
    const source = createFileSource({ path: dir, nodeName: 'node-1', clock: realClock, debounceMs: 20, pollMs: 60_000 });
    await source.start(rec.handlers);
    expect(rec.summary()).toEqual(['add EndpointSlice ns1/web-1', 'add Node node-1', 'add Service ns1/web']);
    expect(rec.problems).toEqual([]);
    rec.events.length = 0;
    await version('..2026_12_04_20_00_01.2', [nodes[0], web(), webSlice('10.244.1.3')]);
    await symlink('..2026_12_04_20_00_01.2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..2026_12_04_20_00_00.1'), { recursive: true });
    await until(() => rec.events.length >= 1, 'the ..data swap', 3000);
    await source.stop();
    expect(rec.summary()).toEqual(['update EndpointSlice ns1/web-1']);
  });
});

describe('file source: the poll and stop()', () => {
  function scripted(states: ParsedObjects[]) {
    let i = 0;
    return async (): Promise<ParsedObjects> => states[Math.min(i++, states.length - 1)]!;
  }
  const parsed = (services: unknown[]): ParsedObjects => ({ services, slices: [], nodes: [nodes[0]], problems: [] }) as unknown as ParsedObjects;

  it('the slow poll re-reads without any file notification', async () => {
    const clock = new ManualClock();
    const rec = recorder();
    const source = createFileSource({
      path: join(dir, 'x.yaml'),
      nodeName: 'node-1',
      clock,
      pollMs: 10_000,
      read: scripted([parsed([]), parsed([web()])]),
    });
    await source.start(rec.handlers);
    expect(rec.summary()).toEqual(['add Node node-1']);
    clock.advance(9_999);
    await new Promise((r) => setTimeout(r, 10));
    expect(rec.events.length).toBe(1);
    clock.advance(1);
    await until(() => rec.events.length === 2, 'the poll');
    await source.stop();
    expect(rec.summary()).toEqual(['add Node node-1', 'add Service ns1/web']);
  });

  it('after stop() no timer is left and no event arrives', async () => {
    const clock = new ManualClock();
    const rec = recorder();
    const source = createFileSource({
      path: join(dir, 'x.yaml'),
      nodeName: 'node-1',
      clock,
      pollMs: 1000,
      read: scripted([parsed([]), parsed([web()])]),
    });
    await source.start(rec.handlers);
    await source.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 10));
    expect(rec.summary()).toEqual(['add Node node-1']);
  });

  it('a handler that throws is reported and the other events still arrive', async () => {
    const file = join(dir, 'cluster.yaml');
    await writeFile(file, yaml([nodes[0], web(), webSlice()]));
    const rec = recorder();
    const source = createFileSource({ path: file, nodeName: 'node-1', clock: realClock });
    await source.start({
      ...rec.handlers,
      onEvent: (e) => {
        if (e.kind === 'Service') throw new Error('boom');
        rec.events.push(e);
      },
    });
    await source.stop();
    expect(rec.summary()).toEqual(['add EndpointSlice ns1/web-1', 'add Node node-1']);
    expect(rec.problems.join('\n')).toMatch(/event handler failed for Service ns1\/web/);
  });
});
