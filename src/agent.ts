/**
 * The node agent: wires a source of cluster state (API server informers or
 * --objects files) -> Proxier -> mode backend, with the sync runner, the
 * canary monitor, and the health, metrics and health-check-node-port
 * servers. stop() (SIGTERM) shuts everything down and leaves the rules in
 * place, as upstream does.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import type { Iptables, IptablesBackend } from '../iptables/iptables.ts';
import { probeNode } from '../iptables/node-probe.ts';
import { createConntrack } from '../proxier/conntrack.ts';
import type { ProxyMode } from '../proxier/mode.ts';
import { outsideChangeReporter } from '../proxier/outside-changes.ts';
import { Proxier } from '../proxier/proxier.ts';
import type { IPFamily } from '../proxier/types.ts';
import { EMULATED_KUBERNETES, VERSION } from './version.ts';
import { featureEnabled } from './feature-gates.ts';
import { PROCESS_START_UNIX } from './servers/promhttp.ts';
import type { ProxyConfig } from './config.ts';
import { featuresFrom, nodeNameFor, watchesServiceCIDRs } from './desired.ts';
import type { Logger } from '../proxier/log.ts';
import { HealthState } from './servers/health-state.ts';
import { healthHandler, listen, metricsHandler, type RunningServer } from './servers/http-servers.ts';
import { createMetrics, observeRestClientRequest, type Metrics } from './servers/metrics.ts';
import { debugHandler } from './servers/debug.ts';
import { registerTrafficMetrics } from './servers/traffic-metrics.ts';
import { registerNfacctMetrics } from './servers/nfacct-metrics.ts';
import { ServiceHealthServers, serviceHealthHosts } from './servers/service-health.ts';
import { createApiSource } from './sources/api-source.ts';
import type { ObjectKind, ObjectSource } from './sources/events.ts';
import { createFileSource } from './sources/file-source.ts';
import { stateBuilder } from '../proxier/state-builder.ts';
import type { Clock } from '../proxier/clock.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import { createMode } from './modes.ts';
import type { NftablesNode } from './mode-nftables.ts';
import { removeModes, switchTargets } from './mode-switch.ts';
import { proxierHooks } from './proxier-hooks.ts';
import { createUserspaceMetrics, userspaceEventMetrics } from './servers/userspace-metrics.ts';
import { agentConntrackSetup } from './conntrack-sysctls.ts';
import { apiEventRecorder, logEventRecorder, type EventRecorder } from './events.ts';
import { setVerbosity } from './log.ts';
import { parseHostPort } from './host-port.ts';
import { interfaceAddresses } from './system/interfaces.ts';

export interface AgentDeps {
  /** Runs iptables, conntrack and sysctl (made for a network namespace in tests and the demo). */
  readonly runner: CommandRunner;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly osHostname: () => string;
  /** API access; built from the config when absent. */
  readonly kubeConfig?: () => KubeConfig;
  /** Force a backend instead of detecting it. */
  readonly iptablesBackend?: IptablesBackend;
  /** The iptables of each family, instead of the node's binaries (unit tests run the agent on FakeIptables). */
  readonly iptables?: ReadonlyMap<IPFamily, Iptables>;
  /** Addresses the health-check node port servers listen on (default: as --nodeport-addresses selects). */
  readonly serviceHealthHosts?: readonly string[];
  /**
   * This host's interface addresses, read at least once a sync period (proxier.ts), among which --nodeport-addresses
   * selects the NodePort destinations and the health-check servers' addresses (default: `ip -j addr show` through
   * `runner`, so in the runner's network namespace).
   */
  readonly interfaceAddresses?: () => readonly string[] | Promise<readonly string[]>;
  /** The nftables mode's nft (FakeNft in unit tests), version and kernel, instead of the node's. */
  readonly nftables?: NftablesNode;
  /** The effective configuration as a KubeProxyConfiguration document, served at /configz. */
  readonly configz?: Readonly<Record<string, unknown>>;
  /** The command line's flags as /flagz shows them (flagzFlags), served with ComponentFlagz on. */
  readonly flagz?: Readonly<Record<string, string>>;
}

export interface Agent {
  readonly proxier: Proxier;
  readonly mode: ProxyMode;
  readonly metrics: Metrics;
  readonly health: HealthState;
  readonly healthz: RunningServer | null;
  readonly metricsServer: RunningServer | null;
  readonly serviceHealth: ServiceHealthServers;
  readonly families: readonly IPFamily[];
  stop(): Promise<void>;
}

async function startServer(
  log: Logger,
  what: string,
  address: string,
  handler: Parameters<typeof listen>[2],
  hardFail: boolean,
): Promise<RunningServer | null> {
  if (!address) return null;
  const hp = parseHostPort(address)!;
  try {
    const s = await listen(hp.host, hp.port, handler);
    log.info({ url: s.url }, `${what} server listening`);
    return s;
  } catch (err) {
    if (hardFail) throw new Error(`cannot start the ${what} server on ${address}: ${(err as Error).message}`);
    log.error({ err }, `cannot start the ${what} server on ${address}; continuing without it`);
    return null;
  }
}

export async function startAgent(config: ProxyConfig, deps: AgentDeps): Promise<Agent> {
  const log = deps.logger;
  const nodeName = nodeNameFor(config, deps.osHostname);
  const probe = await probeNode({
    runner: deps.runner,
    logger: log,
    backend: deps.iptablesBackend ?? config.iptablesBackend,
    cleanupOnly: config.mode === 'nftables',
    ...(deps.iptables ? { handles: deps.iptables } : {}),
  });
  const handles = probe.handles;
  const available = [...handles.keys()];
  if (available.length === 0 && config.mode !== 'nftables')
    throw new Error(`neither iptables nor ip6tables (${probe.backend} backend) works on this node`);
  log.info(
    { node: nodeName, mode: config.mode, backend: probe.backend, backendReason: probe.backendReason, families: available, iptables: probe.version },
    'starting kube-proxy-ts',
  );
  for (const note of config.deprecated) log.warn(note);
  for (const note of config.notImplemented) log.warn(`flag accepted but not implemented: ${note}`);
  // platformSetup: before the mode starts, in every mode.
  const conntrackSetup = await agentConntrackSetup(config, { runner: deps.runner, logger: log, now: () => deps.clock.now() });

  const metrics = createMetrics(new Registry(), { featureGates: config.featureGates, mode: config.mode });
  const userspaceMetrics = config.mode === 'userspace' ? createUserspaceMetrics(metrics.registry) : null;
  const mode = await createMode(config, probe, {
    runner: deps.runner,
    clock: deps.clock,
    logger: log,
    conntrack: createConntrack({ runner: deps.runner }),
    ...(userspaceMetrics ? { onUserspaceEvent: userspaceEventMetrics(userspaceMetrics) } : {}),
    ...(deps.nftables ? { nftables: deps.nftables } : {}),
  });
  // Switching modes: the other modes' rules go, so --mode can be flipped by restarting the agent.
  await removeModes(config.mode, switchTargets(probe, deps), log);
  const families = mode.families;
  // Upstream's start-up lines, word for word: operators find the mode with `kubectl logs ... | grep Using` (the
  // families are the mode's: a node without a working ip6tables is single-stack in the iptables mode).
  if (families.length > 1) log.info({ 'primary ipFamily': families[0] }, 'kube-proxy running in dual-stack mode');
  else log.info({ ipFamily: families[0] }, 'kube-proxy running in single-stack mode');
  log.info(`Using ${config.mode} Proxier`);
  log.info({ version: `v${VERSION}` }, 'Version info');
  const inspect = mode.inspect;
  if (config.trafficCounters && inspect && inspect.traffic() !== null) registerTrafficMetrics(metrics.registry, () => inspect.traffic());
  const nfacctPackets = inspect?.nfacctPackets?.bind(inspect);
  if (nfacctPackets) registerNfacctMetrics(metrics.registry, nfacctPackets, log);
  const health = new HealthState({ healthTimeoutMs: 2 * config.syncPeriodMs, clock: deps.clock, families });
  // Dashboards select nodes by this series (kubernetes-mixin's proxy dashboard): present from the start, with no observation yet.
  for (const f of families) metrics.networkProgrammingLatency.zero({ ip_family: f });
  const observe = (r: Parameters<typeof observeRestClientRequest>[1]): void => observeRestClientRequest(metrics, r);
  const kubeConfig = config.objects
    ? null
    : (
        deps.kubeConfig ??
        (() => {
          throw new Error('no API access configured');
        })
      )();
  const events: EventRecorder = kubeConfig ? apiEventRecorder(kubeConfig, { nodeName, logger: log, observe }) : logEventRecorder(log);
  if (conntrackSetup.failures.length)
    events.record({
      regarding: { kind: 'Node', apiVersion: 'v1', namespace: '', name: nodeName },
      type: 'Warning',
      reason: 'FailedConntrackSetup',
      action: 'StartKubeProxy',
      note: conntrackSetup.failures.join('\n'),
    });
  const serviceHealth = new ServiceHealthServers({
    hosts: deps.serviceHealthHosts ?? ['0.0.0.0'],
    proxyHealthy: () => health.report().healthy,
    onError: (t, err) => {
      log.warn({ service: `${t.namespace}/${t.name}`, port: t.port, err: (err as Error).message }, 'FailedToStartServiceHealthcheck');
      events.record({
        regarding: { kind: 'Service', apiVersion: 'v1', namespace: t.namespace, name: t.name },
        type: 'Warning',
        reason: 'FailedToStartServiceHealthcheck',
        action: 'Listen',
        note: `node ${nodeName} failed to start healthcheck "${t.namespace}/${t.name}" on port ${t.port}: ${(err as Error).message}`,
      });
    },
  });
  const outsideChange = outsideChangeReporter({
    clock: deps.clock,
    logger: log,
    count: (c) => metrics.outsideChangesTotal.inc({ ip_family: c.family, kind: c.kind }),
  });
  const proxier = new Proxier({
    mode,
    builder: stateBuilder(nodeName, featuresFrom(config), { bindAddress: config.bindAddress }),
    clock: deps.clock,
    minSyncPeriodMs: config.minSyncPeriodMs,
    syncPeriodMs: config.syncPeriodMs,
    hostAddresses: hostAddressReader(deps.interfaceAddresses ?? (() => interfaceAddresses(deps.runner)), log),
    hooks: proxierHooks({
      mode,
      metrics,
      userspaceMetrics,
      health,
      serviceHealth,
      ...(deps.serviceHealthHosts ? {} : { serviceHealthHosts: (snaps) => serviceHealthHosts(config.nodePortAddresses, snaps) }),
      clock: deps.clock,
      logger: log,
      detectLocalMode: config.detectLocalMode,
      outsideChange,
      ...(conntrackSetup.afterSync ? { afterSync: conntrackSetup.afterSync } : {}),
    }),
  });

  const healthz = await startServer(log, 'health', config.healthzBindAddress, healthHandler(health, metrics), config.bindAddressHardFail);
  const metricsServer = await startServer(
    log,
    'metrics',
    config.metricsBindAddress,
    metricsHandler(metrics, config.mode, {
      debug: debugHandler({ mode: config.mode, families, inspect, lastSynced: (f) => proxier.lastSynced(f), clock: deps.clock }),
      ...(deps.configz ? { configz: deps.configz } : {}),
      ...(config.profiling ? { setVerbosity: (value: string) => setVerbosity(log, value) } : {}),
      // Upstream's Complete makes the flagz reader, and serveMetrics installs statusz, only with their gates on.
      ...(deps.flagz && featureEnabled(config.featureGates, 'ComponentFlagz') ? { flagz: deps.flagz } : {}),
      ...(featureEnabled(config.featureGates, 'ComponentStatusz')
        ? { statusz: { startUnix: PROCESS_START_UNIX, binaryVersion: VERSION, emulationVersion: EMULATED_KUBERNETES, nodeVersion: process.version } }
        : {}),
    }),
    config.bindAddressHardFail,
  );

  const source: ObjectSource = config.objects
    ? createFileSource({ path: config.objects, nodeName, clock: deps.clock })
    : createApiSource({ kubeConfig: kubeConfig!, nodeName, logger: log, clock: deps.clock, observe, serviceCIDRs: watchesServiceCIDRs(config) });
  events.record({
    regarding: { kind: 'Node', apiVersion: 'v1', namespace: '', name: nodeName },
    type: 'Normal',
    reason: 'Starting',
    action: 'StartKubeProxy',
    note: `kube-proxy-ts started in ${config.mode} mode`,
  });
  proxier.start();
  const caches = cacheSyncLog(log, watchesServiceCIDRs(config));
  await source.start({
    onEvent: (e) => proxier.onEvent(e),
    onSynced: (kind) => {
      caches.synced(kind);
      proxier.onSynced(kind);
    },
    // The one place source problems are logged (the API source describes its failures in the message).
    onProblem: (kind, message, err) => log.warn({ kind, err: err instanceof Error ? err.message : err }, message),
  });

  const stopMonitor = mode.monitor((change) => {
    outsideChange(change);
    proxier.requestFullSync();
  });

  return {
    proxier,
    mode,
    metrics,
    health,
    healthz,
    metricsServer,
    serviceHealth,
    families,
    async stop() {
      stopMonitor();
      await source.stop();
      await proxier.stop();
      await mode.close();
      await serviceHealth.close();
      await events.flush();
      await healthz?.close();
      await metricsServer?.close();
      log.info('kube-proxy-ts stopped; rules left in place');
    },
  };
}

/** Upstream's config controllers, by the kind each watches (pkg/proxy/config: ServiceConfig, EndpointSliceConfig, ...). */
const CONFIG_CONTROLLERS: Readonly<Record<ObjectKind, string>> = {
  Service: 'service config',
  EndpointSlice: 'endpoint slice config',
  ServiceCIDR: 'serviceCIDR config',
  Node: 'node config',
};

/**
 * The lines upstream's config controllers write at start, through client-go's WaitForNamedCacheSync, which operators and
 * their tools look for to see that kube-proxy has its objects: `"Starting service config controller"`, `"Waiting for
 * caches to sync" controller="service config"`, then `"Caches are synced" controller="service config"` when the kind
 * was first listed. ServiceCIDRs only where they are watched (upstream: whenever MultiCIDRServiceAllocator is on).
 */
function cacheSyncLog(log: Logger, serviceCIDRs: boolean): { synced(kind: ObjectKind): void } {
  const waiting = new Set<ObjectKind>(['Service', 'EndpointSlice', ...(serviceCIDRs ? (['ServiceCIDR'] as const) : []), 'Node']);
  for (const kind of waiting) {
    log.info(`Starting ${CONFIG_CONTROLLERS[kind]} controller`);
    log.info({ controller: CONFIG_CONTROLLERS[kind] }, 'Waiting for caches to sync');
  }
  return {
    synced(kind) {
      if (waiting.delete(kind)) log.info({ controller: CONFIG_CONTROLLERS[kind] }, 'Caches are synced');
    },
  };
}

/**
 * The interface addresses, when the Proxier reads them. A failed read is said (upstream's "Failed to get node ip address matching
 * nodeport cidrs") and the last good read kept, not an empty list that would take every NodePort away.
 */
function hostAddressReader(read: () => readonly string[] | Promise<readonly string[]>, log: Logger): () => Promise<readonly string[]> {
  let last: readonly string[] = [];
  return async () => {
    try {
      last = await read();
    } catch (err) {
      log.error({ err: (err as Error).message }, "Failed to list this host's interface addresses; NodePorts keep the last ones read");
    }
    return last;
  };
}
