/**
 * `kube-proxy-ts [flags]`: the node agent, until SIGTERM/SIGINT (rules stay in
 * place). `--cleanup` removes every rule either mode (and upstream
 * kube-proxy) installed, in both families and both backends, and exits.
 * `--write-config-to` writes the effective configuration and exits.
 */
import { watch } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dump } from 'js-yaml';
import { removeKubeProxyRules } from '../../iptables/cleanup.ts';
import { createIptables } from '../../iptables/restore.ts';
import type { IptablesBackend } from '../../iptables/iptables.ts';
import { startAgent } from '../agent.ts';
import { configDocument } from '../config-file.ts';
import { loadKubeConfig } from '../kubeconfig.ts';
import { realClock } from '../system/clock.ts';
import type { CommandRunner } from '../../proxier/exec.ts';
import { createExecaRunner } from '../system/exec.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';
import type { Logger } from '../../proxier/log.ts';

export async function runCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, [], io);
  if (typeof loaded === 'number') return loaded;
  const { config } = loaded;
  const log = io.makeLogger(config.verbosity);
  for (const warning of loaded.warnings) log.warn(warning);
  for (const flag of loaded.ignored) log.warn(`${flag} is ignored because --config is given (as upstream)`);
  const runner = io.runner ?? createExecaRunner();

  const writeTo = loaded.values.get('write-config-to') as string | undefined;
  if (writeTo) {
    const { doc, notes } = configDocument(loaded.values, config);
    for (const note of notes) log.warn(note);
    await writeFile(writeTo, dump(doc));
    io.stdout(`wrote the effective configuration to ${writeTo}\n`);
    return 0;
  }
  if (config.cleanup) return cleanup(runner, io, log);
  // Accepted for render, diff and trace; the agent's nftables mode is wired separately (issue 12).
  if (config.mode === 'nftables') {
    io.stderr('error: --mode=nftables: the agent does not run the nftables mode yet (render, diff and trace do)\n');
    return 2;
  }

  const agent = await startAgent(config, {
    runner,
    clock: io.clock ?? realClock,
    logger: log,
    osHostname: io.osHostname ?? (() => process.env['HOSTNAME'] ?? 'localhost'),
    kubeConfig: () => (io.kubeConfig ?? loadKubeConfig)({ kubeconfig: config.kubeconfig, master: config.master }),
    ...(config.iptablesBackend !== 'auto' ? { iptablesBackend: config.iptablesBackend } : {}),
  });
  const reason = await Promise.race([(io.stopSignal ?? (() => new Promise<string>(() => {})))(), configChanged(loaded.configPath, log)]);
  log.info({ reason }, 'stopping');
  await agent.stop();
  return 0;
}

/** Upstream exits when its --config file changes, to be restarted with the new one. */
function configChanged(path: string | null, log: Logger): Promise<string> {
  if (!path) return new Promise(() => {});
  return new Promise((resolve) => {
    const w = watch(path, { persistent: false }, () => {
      w.close();
      log.warn({ path }, 'the --config file changed: exiting to be restarted with it');
      resolve('config file changed');
    });
  });
}

async function cleanup(runner: CommandRunner, io: CommandIO, log: Logger): Promise<number> {
  let failures = 0;
  for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const ipt = createIptables({ family, backend, runner });
      try {
        const removed = await removeKubeProxyRules(ipt);
        if (removed) log.info({ backend, ipFamily: family, chains: removed }, 'removed kube-proxy rules');
      } catch (err) {
        const msg = (err as Error).message;
        // A backend or family this node does not have is not a failure.
        if (/not found|cannot start|No such file|can't initialize|Table does not exist|Permission denied/i.test(msg)) continue;
        failures++;
        log.error({ backend, ipFamily: family, err: msg }, 'cleanup failed');
      }
    }
  }
  io.stdout(failures ? `cleanup finished with ${failures} failures\n` : 'cleanup done\n');
  return failures ? 1 : 0;
}
