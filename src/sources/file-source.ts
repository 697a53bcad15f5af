/**
 * --objects PATH as a source of cluster state: a manifest file or a directory
 * of them, re-read when it changes (fs.watch, debounced, plus a slow poll as
 * a safety net for editors and filesystems that do not notify). Each read is
 * diffed against the previous one into add/update/delete events, so the
 * proxier sees the same event stream as from an API server.
 *
 * A file that cannot be read or parsed is reported and ignored: the last
 * good state stays programmed.
 */
import { watch, type FSWatcher } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../../proxier/clock.ts';
import { objectKey } from '../../proxier/raw.ts';
import { OBJECT_KINDS, type ObjectEvent, type ObjectKind, type ObjectSource, type SourceHandlers } from './events.ts';
import { readObjects } from './read-objects.ts';
import type { ParsedObjects } from './parse-objects.ts';

export interface FileSourceOptions {
  readonly path: string;
  /** Only this node's Node object is emitted (as the API source watches only its own node). */
  readonly nodeName: string;
  readonly clock: Clock;
  readonly debounceMs?: number;
  readonly pollMs?: number;
  readonly read?: (path: string) => Promise<ParsedObjects>;
}

type Store = Map<ObjectKind, Map<string, unknown>>;

function emptyStore(): Store {
  return new Map(OBJECT_KINDS.map((k) => [k, new Map()]));
}

export function createFileSource(opts: FileSourceOptions): ObjectSource & { reload(): Promise<void> } {
  const read = opts.read ?? readObjects;
  let current: Store = emptyStore();
  let handlers: SourceHandlers | null = null;
  let watcher: FSWatcher | null = null;
  let debounce: unknown = null;
  let poll: unknown = null;
  let reading: Promise<void> = Promise.resolve();
  let stopped = false;

  const emit = (e: ObjectEvent): void => {
    try {
      handlers?.onEvent(e);
    } catch (err) {
      handlers?.onProblem?.(e.kind, `event handler failed for ${e.kind} ${e.key}`, err);
    }
  };

  async function load(): Promise<void> {
    let parsed: ParsedObjects;
    try {
      parsed = await read(opts.path);
    } catch (err) {
      handlers?.onProblem?.(null, `cannot use --objects ${opts.path}, keeping the last good state: ${(err as Error).message}`, err);
      return;
    }
    for (const p of parsed.problems) handlers?.onProblem?.(null, `${p.kind} ${p.namespace}/${p.name}: ${p.field ? p.field + ': ' : ''}${p.reason}`);
    const next = emptyStore();
    const put = (kind: ObjectKind, obj: unknown): void => {
      const key = objectKey(obj);
      if (key === null) {
        handlers?.onProblem?.(kind, `${kind} without metadata.name in ${opts.path}: ignored`);
        return;
      }
      if (next.get(kind)!.has(key)) handlers?.onProblem?.(kind, `${kind} ${key} appears twice in ${opts.path}: the last one wins`);
      next.get(kind)!.set(key, obj);
    };
    for (const s of parsed.services) put('Service', s);
    for (const s of parsed.slices) put('EndpointSlice', s);
    for (const n of parsed.nodes) if (objectKey(n)?.toLowerCase() === opts.nodeName) put('Node', n);
    for (const c of parsed.serviceCIDRs ?? []) put('ServiceCIDR', c);

    for (const kind of OBJECT_KINDS) {
      const before = current.get(kind)!;
      const after = next.get(kind)!;
      for (const [key, old] of before) if (!after.has(key)) emit({ type: 'delete', kind, key, old, obj: null });
      for (const [key, obj] of after) {
        const old = before.get(key);
        if (old === undefined) emit({ type: 'add', kind, key, old: null, obj });
        else if (!isDeepStrictEqual(old, obj)) emit({ type: 'update', kind, key, old, obj });
      }
    }
    current = next;
    for (const kind of OBJECT_KINDS) handlers?.onSynced(kind);
  }

  function schedule(): void {
    if (stopped) return;
    if (debounce !== null) opts.clock.clearTimeout(debounce);
    debounce = opts.clock.setTimeout(() => {
      debounce = null;
      void reload();
    }, opts.debounceMs ?? 100);
  }

  function reload(): Promise<void> {
    reading = reading.then(load);
    return reading;
  }

  function startPoll(): void {
    poll = opts.clock.setTimeout(() => {
      if (stopped) return;
      void reload().then(startPoll);
    }, opts.pollMs ?? 10_000);
  }

  return {
    async start(h) {
      handlers = h;
      stopped = false;
      await reload();
      try {
        watcher = watch(opts.path, { persistent: false }, () => schedule());
        watcher.on('error', (err) => handlers?.onProblem?.(null, `watching ${opts.path} failed; polling only`, err));
      } catch (err) {
        handlers?.onProblem?.(null, `cannot watch ${opts.path}; polling only`, err);
      }
      startPoll();
    },
    async stop() {
      stopped = true;
      watcher?.close();
      watcher = null;
      if (debounce !== null) opts.clock.clearTimeout(debounce);
      if (poll !== null) opts.clock.clearTimeout(poll);
      await reading;
    },
    reload,
  };
}
