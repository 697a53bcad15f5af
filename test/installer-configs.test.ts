/**
 * Start where upstream starts, refuse what upstream refuses: the command lines
 * and config files of real installers (test/installer-configs.case.ts) through
 * the agent command (runCli, in-process; the first cases also through the real
 * entry point in a child process). `--write-config-to` makes the agent load,
 * default and validate everything as it does before starting, then write the
 * effective configuration and exit, so no node is touched.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/commands.ts';
import { createLogger } from '../src/log.ts';
import { cli } from './cli-run.ts';
import {
  GCE_ARGS,
  GUIDE_IPVS_CONFIG,
  K3S_ARGS,
  KOPS_ARGS,
  KUBEADM_1_13_CONFIG,
  KUBEADM_CONFIG_CONF,
  KUBEADM_IPV6_CONFIG_CONF,
  KIND_DRA_CONFIG_CONF,
  TYPHOON_ARGS,
} from './installer-configs.case.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-installers-'));
});

type Doc = Record<string, unknown> & { iptables: Record<string, unknown>; conntrack: Record<string, unknown> };

/**
 * Runs the agent command with --write-config-to (in-process, or in a child
 * process with `spawn`); returns the exit code, all output (logs included)
 * and the written document.
 */
async function effective(
  args: readonly string[],
  opts: { spawn?: boolean } = {},
): Promise<{ code: number; out: string; doc: Doc | null; file: string }> {
  const file = join(dir, `out-${Math.random().toString(36).slice(2)}.yaml`);
  const argv = [...args, '--write-config-to', file];
  let code: number;
  let out = '';
  if (opts.spawn) {
    const r = await cli(argv);
    code = r.code;
    out = r.stdout + r.stderr;
  } else {
    const write = (text: string) => void (out += text);
    code = await runCli(argv, { stdout: write, stderr: write, makeLogger: ({ verbosity }) => createLogger({ verbosity, stream: { write } }) });
  }
  const text = code === 0 ? await readFile(file, 'utf8') : null;
  return { code, out, doc: text === null ? null : (load(text) as Doc), file };
}

async function configFile(text: string): Promise<string> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, text);
  return file;
}

const withVersion = (body: string) => `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${body}\n`;

describe('installer command lines (upstream AppendPortIfNeeded)', { timeout: 30_000 }, () => {
  it("starts with k3s's arguments: --healthz-bind-address=127.0.0.1 gets port 10256", async () => {
    const r = await effective(K3S_ARGS, { spawn: true });
    expect(r.out).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({
      healthzBindAddress: '127.0.0.1:10256',
      mode: 'iptables',
      clusterCIDR: '10.42.0.0/16',
      hostnameOverride: 'k3s-agent-1',
    });
    expect(r.doc!.conntrack).toMatchObject({ maxPerCore: 0, tcpEstablishedTimeout: '0s' });
  });

  it("starts with k3s's IPv6-only arguments: --healthz-bind-address=::1 becomes [::1]:10256", async () => {
    const r = await effective(K3S_ARGS.map((a) => (a.startsWith('--healthz-bind-address') ? '--healthz-bind-address=::1' : a)));
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ healthzBindAddress: '[::1]:10256' });
  });

  it("starts with Typhoon's arguments: --metrics-bind-address=0.0.0.0 gets port 10249", async () => {
    const r = await effective(TYPHOON_ARGS);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ metricsBindAddress: '0.0.0.0:10249', healthzBindAddress: '0.0.0.0:10256', detectLocalMode: 'ClusterCIDR' });
  });

  it("starts with kops's arguments, warning about the flags it does not act on", async () => {
    const r = await effective(KOPS_ARGS);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ clusterCIDR: '100.96.0.0/11', oomScoreAdj: -998 });
    expect(r.doc!.conntrack).toMatchObject({ maxPerCore: 131072 });
  });

  it("starts with kube-up's GCE arguments: ipvs's sync periods are accepted and left to ipvs mode (upstream processV1Alpha1Flags)", async () => {
    const r = await effective(GCE_ARGS, { spawn: true });
    expect(r.code, r.out).toBe(0);
    expect(r.doc).toMatchObject({ clusterCIDR: '10.64.0.0/14', oomScoreAdj: -998, iptables: { syncPeriod: '1m0s', minSyncPeriod: '10s' } });
  });

  it('refuses what upstream cannot parse: a host name, a port over 65535, an IPv6 address with a port but no brackets', async () => {
    for (const bad of ['--metrics-bind-address=localhost:10249', '--healthz-bind-address=[::1]:70000', '--healthz-bind-address=fd00::1:10256:1']) {
      const r = await effective([bad]);
      expect(r.code, bad).toBe(2);
      expect(r.out).toContain(`invalid ${bad.split('=')[0]}`);
    }
  });
});

describe('installer config files (upstream Options.loadConfig: strict, then lenient)', { timeout: 30_000 }, () => {
  it("starts with kubeadm's config.conf: metricsBindAddress 0.0.0.0 gets port 10249, zeros take the defaults", async () => {
    const r = await effective(['--config', await configFile(KUBEADM_CONFIG_CONF)], { spawn: true });
    expect(r.out).not.toMatch(/strict decoding failed/);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({
      metricsBindAddress: '0.0.0.0:10249',
      healthzBindAddress: '0.0.0.0:10256',
      mode: 'iptables',
      detectLocalMode: 'ClusterCIDR',
      configSyncPeriod: '15m0s',
    });
    expect(r.doc!.iptables).toMatchObject({ syncPeriod: '30s', minSyncPeriod: '1s', masqueradeBit: 14, localhostNodePorts: true });
  });

  it("serves health and metrics on IPv6 with kubeadm's IPv6 config.conf (bindAddress '::'): [::]:10256 and [::1]:10249 (upstream SetDefaults_KubeProxyConfiguration, getDefaultAddresses)", async () => {
    const r = await effective(['--config', await configFile(KUBEADM_IPV6_CONFIG_CONF)], { spawn: true });
    expect(r.code, r.out).toBe(0);
    expect(r.doc).toMatchObject({ bindAddress: '::', healthzBindAddress: '[::]:10256', metricsBindAddress: '[::1]:10249' });
    // Left out instead of "": the same defaults. A bare IPv4-mapped bindAddress is IPv4 to Go's To4.
    const omitted = await effective(['--config', await configFile(withVersion("bindAddress: 'fd00::10'"))]);
    expect(omitted.doc).toMatchObject({ healthzBindAddress: '[::]:10256', metricsBindAddress: '[::1]:10249' });
    const mapped = await effective(['--config', await configFile(withVersion("bindAddress: '::ffff:10.0.0.1'"))]);
    expect(mapped.doc).toMatchObject({ healthzBindAddress: '0.0.0.0:10256', metricsBindAddress: '127.0.0.1:10249' });
    // What the file sets stays; the command line's --bind-address does not move the defaults (upstream's are fixed by then).
    const kept = await effective(['--config', await configFile(withVersion("bindAddress: '::'\nmetricsBindAddress: 0.0.0.0")), '--bind-address=::']);
    expect(kept.doc).toMatchObject({ healthzBindAddress: '[::]:10256', metricsBindAddress: '0.0.0.0:10249' });
    const flags = await effective(['--bind-address=::']);
    expect(flags.doc).toMatchObject({ healthzBindAddress: '0.0.0.0:10256', metricsBindAddress: '127.0.0.1:10249' });
  });

  it("starts with kind's config.conf carrying the cluster's DRA gates of v1.33-v1.35, gates upstream registers (featuregate.SetFromMap, validation.Validate)", async () => {
    const r = await effective(['--config', await configFile(KIND_DRA_CONFIG_CONF)]);
    expect(r.out).not.toContain('unrecognized feature gate');
    expect(r.code).toBe(0);
    expect(r.doc!.featureGates).toMatchObject({ DRAPrioritizedList: true, DRAConsumableCapacity: true, DynamicResourceAllocation: true });
    expect(r.doc!.conntrack).toMatchObject({ maxPerCore: 0 });
    // A kube-proxy gate of v1.37 too; a misspelt gate is still refused.
    const later = await effective([
      '--feature-gates=KubeProxyIPVS=false,KubeProxyNFTablesLocalhostNodePorts=false,DRADeviceCompatibilityGroups=true',
    ]);
    expect(later.code, later.out).toBe(0);
    const typo = await effective(['--feature-gates=DRAPrioritisedList=true']);
    expect(typo.code).toBe(2);
    expect(typo.out).toContain('unrecognized feature gate: DRAPrioritisedList');
  });

  it('starts with a kubeadm 1.13 file, warning once and naming every field a later version removed', async () => {
    const r = await effective(['--config', await configFile(KUBEADM_1_13_CONFIG)], { spawn: true });
    expect(r.code).toBe(0);
    const warnings = r.out.split('\n').filter((l) => l.includes('strict decoding failed'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('unknown field \\"conntrack.max\\"');
    expect(warnings[0]).toContain('unknown field \\"resourceContainer\\"');
    expect(r.doc).toMatchObject({ clusterCIDR: '10.148.0.0/16', udpIdleTimeout: '250ms' });
  });

  it("reads the first document of a file cut from a multi-document stream, as upstream's decoder (sigs.k8s.io/yaml YAMLToJSON: one yaml.Unmarshal)", async () => {
    // kind's KubeProxyConfiguration document as its ConfigTemplateBetaV3 renders it (kubernetes-sigs/kind
    // pkg/cluster/internal/kubeadm/config.go), cut from the stream with the separator that follows it, and with the next
    // document left on.
    const kind = `---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
metadata:
  name: config
mode: "iptables"
iptables:
  minSyncPeriod: 1s
conntrack:
# Skip setting sysctl value "net.netfilter.nf_conntrack_max"
# It is a global variable that affects other namespaces
  maxPerCore: 0
`;
    for (const text of [`${kind}---\n`, `${kind}---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n`]) {
      const r = await effective(['--config', await configFile(text)]);
      expect(r.out).not.toContain('not valid YAML');
      expect(r.code).toBe(0);
      expect(r.doc!.conntrack).toMatchObject({ maxPerCore: 0 });
      expect(r.doc!.iptables).toMatchObject({ minSyncPeriod: '1s' });
    }
  });

  it('treats an unknown key under ipvs: as any other unknown key', async () => {
    const r = await effective([
      '--config',
      await configFile(withVersion('mode: iptables\nipvs:\n  masqueradeAll: true\n  scheduler: rr\n  syncPeriod: 30s')),
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('unknown field \\"ipvs.masqueradeAll\\"');
    expect(r.out).not.toContain('ipvs.scheduler');
  });

  it("refuses a guide's ipvs-mode file for its mode, after naming its unknown fields", async () => {
    const r = await effective(['--config', await configFile(GUIDE_IPVS_CONFIG)]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/mode: invalid value "ipvs"/);
  });

  it('still refuses a value of the wrong type, which lenient decoding cannot read either', async () => {
    const r = await effective(['--config', await configFile(withVersion('ipvs:\n  syncPeriod: 30'))]);
    expect(r.code).toBe(2);
    expect(r.out).toContain('ipvs.syncPeriod: expected a duration string');
  });
});

describe('what upstream validation.Validate refuses: exit 2 naming the flag or field', () => {
  it.each([
    [['--feature-gates=NoSuchGate=true'], 'unrecognized feature gate: NoSuchGate'],
    [['--feature-gates=PreferSameTrafficDistribution=true,TopologyAwareHint=true'], 'unrecognized feature gate: TopologyAwareHint'],
    [['--conntrack-max-per-core=-1'], 'invalid value "-1" for --conntrack-max-per-core: must be greater than or equal to 0'],
    [['--conntrack-min=-5'], 'invalid value "-5" for --conntrack-min: must be greater than or equal to 0'],
    [['--kube-api-burst=-1'], 'invalid value "-1" for --kube-api-burst: must be greater than or equal to 0'],
    [['--config-sync-period=0s'], '--config-sync-period must be greater than 0'],
    [['--iptables-min-sync-period=-1s'], '--iptables-min-sync-period must be greater than or equal to 0'],
    [['--conntrack-udp-timeout=-1s'], '--conntrack-udp-timeout must be greater than or equal to 0'],
    [['--show-hidden-metrics-for-version=latest'], 'invalid --show-hidden-metrics-for-version "latest"'],
    [['--detect-local-mode=BridgeInterface'], '--detect-local-mode=BridgeInterface needs --pod-bridge-interface'],
    [['--detect-local-mode=InterfaceNamePrefix'], '--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix'],
    [['--udp-timeout=0.5ns'], '--udp-timeout must be greater than 0'],
  ])('refuses %j (upstream validation.Validate)', async (args, message) => {
    const r = await effective(args);
    expect(r.code).toBe(2);
    expect(r.out).toContain(message);
  });

  it.each([
    ['featureGates:\n  NoSuchGate: true', 'featureGates: invalid --feature-gates: unrecognized feature gate: NoSuchGate'],
    ['conntrack:\n  maxPerCore: -1', 'conntrack.maxPerCore: invalid value "-1": must be greater than or equal to 0'],
    ['detectLocalMode: BridgeInterface', 'detectLocal.bridgeInterface: --detect-local-mode=BridgeInterface needs --pod-bridge-interface'],
    ['clientConnection:\n  burst: -3', 'clientConnection.burst: invalid value "-3"'],
  ])('refuses the file field %j naming it (upstream validation.Validate)', async (body, message) => {
    const r = await effective(['--config', await configFile(withVersion(body))]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(message);
  });

  it('accepts the gates of other components and of earlier kube-proxy releases, as upstream registers them all', async () => {
    const r = await effective(['--feature-gates=TopologyAwareHints=true,AllAlpha=false,KubeletInUserNamespace=true,EndpointSliceProxying=true']);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ featureGates: { TopologyAwareHints: true, KubeletInUserNamespace: true } });
  });
});

describe('--write-config-to (upstream writeConfigFile)', { timeout: 30_000 }, () => {
  it("writes upstream's effective defaults and durations as Go prints them, which --config reads back", async () => {
    const first = await effective(
      ['--proxy-mode=userspace', '--iptables-min-sync-period=1.5us', '--iptables-sync-period=90s', '--udp-timeout=1h30m'],
      { spawn: true },
    );
    expect(first.code).toBe(0);
    expect(first.doc).toMatchObject({ mode: 'userspace', detectLocalMode: 'ClusterCIDR', udpIdleTimeout: '1h30m0s' });
    expect(first.doc!.iptables).toMatchObject({ minSyncPeriod: '1.5µs', syncPeriod: '1m30s' });
    const again = await effective(['--config', first.file], { spawn: true });
    expect(again.out).not.toMatch(/strict decoding failed|reads back as/);
    expect(again.code).toBe(0);
    expect(again.doc).toEqual(first.doc);
  });

  it('quotes a string that YAML 1.1 would read as another type (0X1F, 0B1), so --config reads it back as written (sigs.k8s.io/yaml YAMLToJSON, go-yaml v2)', async () => {
    const first = await effective(['--kubeconfig=0X1F', '--cluster-cidr=10.0.0.0/8', '--hostname-override=0b1']);
    expect(first.code).toBe(0);
    const text = await readFile(first.file, 'utf8');
    expect(text).toMatch(/kubeconfig: '0X1F'/);
    const again = await effective(['--config', first.file]);
    expect(again.out).not.toContain('error');
    expect(again.code).toBe(0);
    expect(again.doc).toEqual(first.doc);
  });

  it('writes --iptables-min-sync-period=0.5ns as 0s (Go truncates to whole nanoseconds) and says a 0 reads back as the default', async () => {
    const r = await effective(['--iptables-min-sync-period=0.5ns']);
    expect(r.code).toBe(0);
    expect(r.doc!.iptables).toMatchObject({ minSyncPeriod: '0s' });
    expect(r.out).toContain('iptables.minSyncPeriod: \\"0s\\" reads back as the default 1s');
    const again = await effective(['--config', r.file]);
    expect(again.code).toBe(0);
    expect(again.doc!.iptables).toMatchObject({ minSyncPeriod: '1s' });
  });
});
