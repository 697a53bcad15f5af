/**
 * `kube-proxy-ts [flags]`: the node agent, until SIGTERM/SIGINT (rules stay in
 * place). `--cleanup` removes every rule any mode (and upstream
 * kube-proxy) installed, in both families and both backends, and the
 * nftables tables, and exits.
 * `--write-config-to` writes the effective configuration and exits.
 */
import { watch } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dump } from 'js-yaml';
import { Nft } from '../../nftables/nft.ts';
import { startAgent } from '../agent.ts';
import { configDocument } from '../config-file.ts';
import { loadKubeConfig } from '../kubeconfig.ts';
import { everyIptables, removeModes } from '../mode-switch.ts';
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

  const hooks = io.beforeAgentStart?.(config.mode) || {};
  const agent = await startAgent(config, {
    runner,
    clock: io.clock ?? realClock,
    logger: log,
    osHostname: io.osHostname ?? (() => process.env['HOSTNAME'] ?? 'localhost'),
    kubeConfig: () => (io.kubeConfig ?? loadKubeConfig)({ kubeconfig: config.kubeconfig, master: config.master }),
    ...(config.iptablesBackend !== 'auto' ? { iptablesBackend: config.iptablesBackend } : {}),
    ...(hooks.collectGarbage ? { nftables: { collectGarbage: hooks.collectGarbage } } : {}),
  });
  const reason = await Promise.race([(io.stopSignal ?? (() => new Promise<string>(() => {})))(), configChanged(loaded.configPath, log)]);
  log.info({ reason }, 'stopping');
  await agent.stop();
  return 0;
}

/**
 * Upstream exits when its --config file changes, to be restarted with the new one. The watch follows a symlink to
 * the file it names, so a ConfigMap volume's update (kubelet swaps `..data` and deletes the old files) counts, as do
 * an editor's write-and-rename and an edit in place.
 */
export function configChanged(path: string | null, log: Logger): Promise<string> {
  if (!path) return new Promise(() => {});
  return new Promise((resolve) => {
    const w = watch(path, { persistent: false }, () => {
      w.close();
      log.warn({ path }, 'the --config file changed: exiting to be restarted with it');
      resolve('config file changed');
    });
  });
}

/** Every mode's rules: iptables and userspace chains in both backends and families, and the nftables tables. */
async function cleanup(runner: CommandRunner, io: CommandIO, log: Logger): Promise<number> {
  const nft = new Nft(runner);
  const failures = await removeModes(null, { iptables: everyIptables(runner), deleteNftTable: (family) => nft.deleteTable(family) }, log);
  io.stdout(failures ? `cleanup finished with ${failures} failures\n` : 'cleanup done\n');
  return failures ? 1 : 0;
}
