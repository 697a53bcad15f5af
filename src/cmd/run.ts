/**
 * `kube-proxy-ts [flags]`: the node agent, until SIGTERM/SIGINT (rules stay in
 * place; exit 0) or until its --config file holds new content that loads (exit 1,
 * as upstream; config-watch.ts). `--cleanup` removes every rule any mode (and upstream
 * kube-proxy) installed, in both families and both backends, and the
 * nftables tables, and exits.
 * `--init-only` sets the node's sysctls and exits. `--write-config-to` writes
 * the effective configuration and exits.
 */
import { writeFile } from 'node:fs/promises';
import { dump } from 'js-yaml';
import { ensureRouteLocalnet } from '../../iptables/iptables-mode.ts';
import { Nft } from '../../nftables/nft.ts';
import { startAgent } from '../agent.ts';
import type { ProxyConfig } from '../config.ts';
import { configDocument, UPSTREAM_YAML_SCHEMA } from '../config-file.ts';
import { AGENT_FLAGS } from '../flag-table.ts';
import { flagzFlags } from '../flags.ts';
import { conntrackSettings, setConntrackSysctls } from '../conntrack-sysctls.ts';
import { loadApiAccess } from '../kubeconfig.ts';
import { everyIptables, removeModes } from '../mode-switch.ts';
import { realClock } from '../system/clock.ts';
import type { CommandRunner } from '../../proxier/exec.ts';
import { createExecaRunner } from '../system/exec.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';
import { CONFIG_UPDATED, configChanged } from './config-watch.ts';
import type { Logger } from '../../proxier/log.ts';

export async function runCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, [], io);
  if (typeof loaded === 'number') return loaded;
  const { config } = loaded;
  const log = io.makeLogger(config);
  for (const warning of loaded.warnings) log.warn(warning);
  for (const flag of loaded.ignored) log.warn(`${flag} is ignored because --config is given (as upstream)`);
  const runner = io.runner ?? createExecaRunner();

  const writeTo = loaded.values.get('write-config-to') as string | undefined;
  if (writeTo) {
    const { doc, notes } = configDocument(loaded.values, config);
    for (const note of notes) log.warn(note);
    // Quoted wherever upstream's YAML 1.1 reading (and --config's) would take a string for another type: '0X1F', 'no'.
    await writeFile(writeTo, dump(doc, { schema: UPSTREAM_YAML_SCHEMA }));
    io.stdout(`wrote the effective configuration to ${writeTo}\n`);
    return 0;
  }
  if (config.cleanup) return cleanup(runner, io, log);
  if (config.initOnly) return initOnly(config, runner, log);

  // Upstream's newProxyServer: the API client first, so that a kubeconfig that cannot work stops it before it touches
  // the node.
  const kubeConfig = config.objects ? null : (io.kubeConfig ?? loadApiAccess)({ kubeconfig: config.kubeconfig, master: config.master });

  // Upstream's ProxyServer.Run: the agent's own OOM score (-999 by default), a failure only noted.
  const oomError = io.setOomScoreAdj?.(config.oomScoreAdj);
  if (oomError)
    log.info(
      `cannot set oom_score_adj to ${config.oomScoreAdj}: ${oomError}${/EACCES|permission/i.test(oomError) ? ' (lowering it needs CAP_SYS_RESOURCE)' : ''}`,
    );

  // Watched from here, so that a change while the agent starts is not missed.
  const changed = configChanged(loaded.configPath, { startedWith: loaded.configText ?? '', check: () => loads(argv, io), log });
  const hooks = io.beforeAgentStart?.(config.mode) || {};
  const agent = await startAgent(config, {
    runner,
    clock: io.clock ?? realClock,
    logger: log,
    osHostname: io.osHostname ?? (() => process.env['HOSTNAME'] ?? 'localhost'),
    ...(kubeConfig ? { kubeConfig: () => kubeConfig } : {}),
    ...(config.iptablesBackend !== 'auto' ? { iptablesBackend: config.iptablesBackend } : {}),
    ...(hooks.collectGarbage ? { nftables: { collectGarbage: hooks.collectGarbage } } : {}),
    configz: configDocument(loaded.values, config).doc,
    flagz: flagzFlags(AGENT_FLAGS, loaded.given),
  });
  const reason = await Promise.race([(io.stopSignal ?? (() => new Promise<string>(() => {})))(), changed]);
  log.info({ reason }, 'stopping');
  await agent.stop();
  // Upstream returns the change as an error: status 1, which systemd's Restart=on-failure restarts too.
  return reason === CONFIG_UPDATED ? 1 : 0;
}

/** Whether the command line (and the --config file as it is now) loads: null, or the error a start would print. */
async function loads(argv: readonly string[], io: CommandIO): Promise<string | null> {
  let printed = '';
  try {
    const r = await loadConfig(argv, [], { ...io, stderr: (text) => (printed += text) });
    return typeof r === 'number' ? printed.replace(/^error: /, '').trim() : null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * --init-only: the node setup that needs privileges, as an init container runs it before an unprivileged agent
 * (upstream newProxyServer with initOnly): the conntrack sysctls and, in iptables mode with localhost NodePorts,
 * route_localnet. No API access. Exits 1 when something was not set, naming it.
 */
async function initOnly(config: ProxyConfig, runner: CommandRunner, log: Logger): Promise<number> {
  const { set, failures } = await setConntrackSysctls(conntrackSettings(config), runner);
  for (const line of set) log.info({ sysctl: line }, 'Set sysctl');
  const all = [...failures];
  if (config.mode === 'iptables' && config.localhostNodePorts) {
    const { written, error } = await ensureRouteLocalnet(runner);
    if (written) log.info({ sysctl: 'net.ipv4.conf.all.route_localnet=1' }, 'Set sysctl');
    else if (error)
      all.push(
        `cannot set net.ipv4.conf.all.route_localnet to 1: ${error}; --iptables-localhost-nodeports=false (iptables.localhostNodePorts: false) does without it`,
      );
  }
  for (const failure of all) log.error(`init: ${failure}`);
  if (all.length) return 1;
  log.info('System initialized and --init-only specified');
  return 0;
}

/** Every mode's rules: iptables and userspace chains in both backends and families, and the nftables tables. */
async function cleanup(runner: CommandRunner, io: CommandIO, log: Logger): Promise<number> {
  const nft = new Nft(runner);
  const failures = await removeModes(
    null,
    { iptables: everyIptables(runner), deleteNftTable: (family) => nft.deleteTable(family), ipvs: runner },
    log,
  );
  io.stdout(failures ? `cleanup finished with ${failures} failures\n` : 'cleanup done\n');
  return failures ? 1 : 0;
}
