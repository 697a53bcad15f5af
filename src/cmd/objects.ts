/**
 * The cluster objects a one-shot command (diff, trace) works from: the
 * --objects files, or one complete list from the API server through the same
 * informers the agent uses (never a half-listed state).
 */
import type { ProxyConfig } from '../config.ts';
import { nodeNameFor, watchesServiceCIDRs } from '../desired.ts';
import { loadKubeConfig } from '../kubeconfig.ts';
import type { Logger } from '../../proxier/log.ts';
import { createApiSource, informerSpecs } from '../sources/api-source.ts';
import { OBJECT_KINDS, type ObjectKind } from '../sources/events.ts';
import type { ParsedObjects } from '../sources/parse-objects.ts';
import { readObjects } from '../sources/read-objects.ts';
import { realClock } from '../system/clock.ts';
import type { CommandIO } from './io.ts';

export async function currentObjects(config: ProxyConfig, io: CommandIO, log: Logger, timeoutMs = 30_000): Promise<ParsedObjects> {
  if (config.objects) return readObjects(config.objects);
  const kubeConfig = (io.kubeConfig ?? loadKubeConfig)({ kubeconfig: config.kubeconfig, master: config.master });
  const store = new Map<ObjectKind, Map<string, unknown>>(OBJECT_KINDS.map((k) => [k, new Map()]));
  const synced = new Set<ObjectKind>();
  const nodeName = nodeNameFor(config, io.osHostname);
  const serviceCIDRs = watchesServiceCIDRs(config);
  // Every kind the source lists; an optional one it cannot have counts as listed (api-source.ts).
  const kinds = informerSpecs(nodeName, { serviceCIDRs }).map((s) => s.kind);
  const source = createApiSource({ kubeConfig, nodeName, logger: log, clock: io.clock ?? realClock, serviceCIDRs });
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => (done = resolve));
  await source.start({
    onEvent: (e) => {
      if (e.obj === null) store.get(e.kind)!.delete(e.key);
      else store.get(e.kind)!.set(e.key, e.obj);
    },
    onSynced: (kind) => {
      synced.add(kind);
      if (kinds.every((k) => synced.has(k))) done();
    },
    onProblem: (kind, message) => log.debug({ kind }, message),
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      all,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`could not list ${kinds.filter((k) => !synced.has(k)).join(', ')} from the API server within ${timeoutMs / 1000}s`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await source.stop();
  }
  return {
    services: [...store.get('Service')!.values()],
    slices: [...store.get('EndpointSlice')!.values()],
    nodes: [...store.get('Node')!.values()],
    serviceCIDRs: [...store.get('ServiceCIDR')!.values()],
    problems: [],
  };
}
