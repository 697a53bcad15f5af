import { describe, expect, it } from 'vitest';
import { configFromFlags } from './config.ts';
import { ConfigError, configDocument, lenientDecodingWarning, mergeConfig, parseConfigFile } from './config-file.ts';
import { parseFlags } from './flags.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { dump } from 'js-yaml';

const KUBEADM = `
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
`;

describe('KubeProxyConfiguration files', () => {
  it('accepts the file kubeadm writes', () => {
    const parsed = parseConfigFile(KUBEADM, 'config.conf');
    expect(parsed.unknownFields).toEqual([]);
    const values = parsed.values;
    expect(values.get('cluster-cidr')).toBe('10.244.0.0/16');
    expect(values.get('kubeconfig')).toBe('/var/lib/kube-proxy/kubeconfig.conf');
    expect(values.get('iptables-masquerade-bit')).toBe(14); // null -> default
  });

  it("gives kubeadm's zero values upstream's defaults, so the file it writes starts the agent as upstream's would", () => {
    const c = configFromFlags(mergeConfig(parseConfigFile(KUBEADM, 'config.conf').values, new Map()).values);
    expect(c).toMatchObject({
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 1_000,
      udpIdleTimeoutMs: 250,
      configSyncPeriodMs: 15 * 60_000,
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      bindAddress: '0.0.0.0',
    });
    expect(c.notImplemented.join(' ')).not.toMatch(/qps|burst|content-type/);
  });

  it('reads logging.verbosity and logging.format (the -v and --logging-format flags still win: upstream copyLogsFromFlags)', () => {
    const doc = (v: number) =>
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlogging:\n  format: json\n  verbosity: ${v}\n`;
    expect(configFromFlags(mergeConfig(parseConfigFile(doc(4), 'c').values, new Map()).values)).toMatchObject({
      verbosity: 4,
      loggingFormat: 'json',
    });
    const flags = parseFlags(['-v=2', '--logging-format=text'], AGENT_FLAGS).values;
    expect(configFromFlags(mergeConfig(parseConfigFile(doc(4), 'c').values, flags).values)).toMatchObject({ verbosity: 2, loggingFormat: 'text' });
    expect(configFromFlags(parseFlags([], AGENT_FLAGS).values).loggingFormat).toBe('text');
  });

  it('accepts mode: nftables (upstream validateProxyMode on Linux)', () => {
    const text = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n';
    expect(configFromFlags(mergeConfig(parseConfigFile(text, 'c').values, new Map()).values).mode).toBe('nftables');
  });

  it('keeps an explicit non-zero value and still validates it', () => {
    const text = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables:\n  minSyncPeriod: 0.5s\n  syncPeriod: 1m0s\n';
    expect(configFromFlags(mergeConfig(parseConfigFile(text, 'c').values, new Map()).values)).toMatchObject({
      minSyncPeriodMs: 500,
      syncPeriodMs: 60_000,
    });
  });

  describe('YAML 1.1 scalars, as upstream reads the file (sigs.k8s.io/yaml YAMLToJSON over its go-yaml v2 fork, goyaml.v2/resolve.go)', () => {
    const doc = (extra: string) => `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${extra}\n`;
    const value = (extra: string, flag: string) => parseConfigFile(doc(extra), 'c.yaml').values.get(flag);

    it.each([
      ['y', true],
      ['Y', true],
      ['yes', true],
      ['Yes', true],
      ['YES', true],
      ['on', true],
      ['On', true],
      ['ON', true],
      ['True', true],
      ['n', false],
      ['N', false],
      ['no', false],
      ['No', false],
      ['NO', false],
      ['off', false],
      ['Off', false],
      ['OFF', false],
      ['FALSE', false],
    ])('reads an unquoted %s as %s: iptables.masqueradeAll, bindAddressHardFail, featureGates', (word, want) => {
      expect(value(`iptables:\n  masqueradeAll: ${word}`, 'masquerade-all')).toBe(want);
      expect(value(`bindAddressHardFail: ${word}`, 'bind-address-hard-fail')).toBe(want);
      expect(value(`featureGates:\n  MultiCIDRServiceAllocator: ${word}`, 'feature-gates')).toEqual({ MultiCIDRServiceAllocator: want });
    });

    it("keeps quoted words, !!str and spellings outside resolve.go's table strings (a bool field refuses them)", () => {
      expect(() => parseConfigFile(doc('iptables:\n  masqueradeAll: "yes"'), 'c.yaml')).toThrow(
        /iptables.masqueradeAll: expected true or false, got string "yes"/,
      );
      expect(() => parseConfigFile(doc('iptables:\n  masqueradeAll: !!str on'), 'c.yaml')).toThrow(/got string "on"/);
      expect(() => parseConfigFile(doc('iptables:\n  masqueradeAll: oN'), 'c.yaml')).toThrow(/got string "oN"/);
      expect(() => parseConfigFile(doc('iptables:\n  masqueradeAll: yEs'), 'c.yaml')).toThrow(/got string "yEs"/);
      expect(value('hostnameOverride: "no"', 'hostname-override')).toBe('no');
    });

    it('refuses `hostnameOverride: no` as upstream does (false decoded into a string field), naming the field and saying to quote it', () => {
      for (const [extra, field] of [
        ['hostnameOverride: no', 'hostnameOverride'],
        ['clusterCIDR: on', 'clusterCIDR'],
        ['ipvs:\n  scheduler: y', 'ipvs.scheduler'],
        ['nodePortAddresses: [yes]', 'nodePortAddresses'],
      ]) {
        let err: unknown;
        try {
          parseConfigFile(doc(extra!), 'c.yaml');
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).field).toBe(field);
        expect((err as ConfigError).message).toMatch(new RegExp(`^c\\.yaml: ${field!.replace('.', '\\.')}: expected .*, got (boolean|a list).*`));
        expect((err as ConfigError).message).toContain(
          'the file is YAML 1.1, as upstream reads it: an unquoted y, yes, on, n, no or off is a boolean; quote it',
        );
      }
    });

    it.each([
      ['017', 15],
      ['0o17', 15],
      ['0O17', 15],
      ['-0o17', -15],
      ['0x1F', 31],
      ['+0x1F', 31],
      ['-0x1f', -31],
      ['0b1110', 14],
      ['1_000', 1000],
      ['0_17', 15],
      ['08', 8],
      ['1e2', 100],
      ['~', null],
      ['Null', null],
      ['NULL', null],
    ])('reads the integer %s as go-yaml v2 does (strconv.ParseInt base 0 after removing "_"): %s', (text, want) => {
      if (want === null || want >= 0) expect(value(`conntrack:\n  maxPerCore: ${text}`, 'conntrack-max-per-core')).toBe(want ?? 32768);
      if (want !== null && want >= -1000 && want <= 1000) expect(value(`oomScoreAdj: ${text}`, 'oom-score-adj')).toBe(want);
      if (want !== null && want >= 0 && want <= 31) expect(value(`iptables:\n  masqueradeBit: ${text}`, 'iptables-masquerade-bit')).toBe(want);
    });

    it('keeps sexagesimal 1:30 and NuLL strings (go-yaml v2 dropped base 60), refused by an integer field; a timestamp stays a string', () => {
      expect(() => parseConfigFile(doc('oomScoreAdj: 1:30'), 'c.yaml')).toThrow(/oomScoreAdj: expected an integer, got string "1:30"/);
      expect(() => parseConfigFile(doc('conntrack:\n  min: NuLL'), 'c.yaml')).toThrow(/conntrack.min: expected an integer, got string "NuLL"/);
      expect(value('hostnameOverride: 2001-12-14', 'hostname-override')).toBe('2001-12-14');
    });

    it('refuses .nan and .inf, which YAMLToJSON cannot write as JSON, naming the field', () => {
      expect(() => parseConfigFile(doc('clientConnection:\n  qps: .nan'), 'c.yaml')).toThrow(
        /^c\.yaml: clientConnection\.qps: NaN \(\.nan or \.inf\) has no JSON form/,
      );
      expect(() => parseConfigFile(doc('conntrack:\n  maxPerCore: -.Inf'), 'c.yaml')).toThrow(/conntrack\.maxPerCore: -Infinity/);
    });

    it('takes merge keys (<<), as go-yaml v2 does', () => {
      const text = doc('base: &b\n  masqueradeAll: yes\niptables:\n  <<: *b\n  masqueradeBit: 0x0F');
      const parsed = parseConfigFile(text, 'c.yaml');
      expect(parsed.values.get('masquerade-all')).toBe(true);
      expect(parsed.values.get('iptables-masquerade-bit')).toBe(15);
      expect(parsed.unknownFields).toEqual(['base']);
    });
  });

  it.each([
    ['iptables:\n  masqueradeBit: "14"', /iptables.masqueradeBit: expected an integer, got string "14"/],
    ['iptables:\n  syncPeriod: 30', /iptables.syncPeriod: expected a duration string/],
    ['iptables:\n  syncPeriod: soon', /iptables.syncPeriod: invalid value "soon"/],
    ['mode: ipvs', /mode: invalid value "ipvs": must be one of/],
    ['ipvs:\n  syncPeriod: 30', /ipvs.syncPeriod: expected a duration string/],
    ['ipvs:\n  syncPeriod: soon', /ipvs.syncPeriod: invalid duration "soon"/],
    ['winkernel: true', /winkernel: expected an object, got boolean true/],
    ['conntrack:\n  maxPerCore: -1', /conntrack.maxPerCore: invalid value "-1": must be greater than or equal to 0/],
    ['nodePortAddresses: 10.0.0.0/8', /nodePortAddresses: expected a list of strings/],
  ])('rejects %j naming the field', (extra, message) => {
    const text = `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${extra}\n`;
    expect(() => parseConfigFile(text, 'c.yaml')).toThrow(ConfigError);
    expect(() => parseConfigFile(text, 'c.yaml')).toThrow(message);
  });

  it.each([
    ['clusterCidr: 10.0.0.0/8', ['clusterCidr']],
    ['iptables:\n  masqueradeAl: true', ['iptables.masqueradeAl']],
    ['ipvs:\n  masqueradeAll: true\n  scheduler: rr', ['ipvs.masqueradeAll']],
    ['logging:\n  verbosityy: 3', ['logging.verbosityy']],
  ])('decodes %j leniently, naming the unknown field (upstream Options.loadConfig)', (extra, unknown) => {
    const text = `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${extra}\n`;
    const parsed = parseConfigFile(text, 'c.yaml');
    expect(parsed.unknownFields).toEqual(unknown);
    expect(lenientDecodingWarning(parsed, 'c.yaml')).toContain(`unknown field "${unknown[0]}"`);
  });

  it('keeps the last of two duplicate keys and names it (upstream lenient decoding)', () => {
    const parsed = parseConfigFile(
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.0.0.0/8\nclusterCIDR: 10.1.0.0/16\n',
      'c.yaml',
    );
    expect(parsed.values.get('cluster-cidr')).toBe('10.1.0.0/16');
    expect(lenientDecodingWarning(parsed, 'c.yaml')).toContain('duplicate field "clusterCIDR (line 4)"');
  });

  it('rejects the wrong kind or version and broken YAML', () => {
    expect(() => parseConfigFile('kind: Pod\napiVersion: v1\n', 'c.yaml')).toThrow('kind must be KubeProxyConfiguration');
    expect(() => parseConfigFile('apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n', 'c.yaml')).toThrow(
      'apiVersion must be',
    );
    expect(() => parseConfigFile('a: [', 'c.yaml')).toThrow('c.yaml: not valid YAML');
  });

  it('lets --hostname-override and -v win over the file and reports the flags it ignores, as upstream', () => {
    const file = parseConfigFile(
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.0.0.0/8\nhostnameOverride: from-file\n',
      'c',
    ).values;
    const flags = parseFlags(['--hostname-override=node-7', '-v=3', '--cluster-cidr=11.0.0.0/8', '--objects=/x'], AGENT_FLAGS).values;
    const { values, ignored } = mergeConfig(file, flags);
    const c = configFromFlags(values);
    expect(c).toMatchObject({ hostnameOverride: 'node-7', verbosity: 3, clusterCIDRs: ['10.0.0.0/8'], objects: '/x' });
    expect(ignored).toEqual(['--cluster-cidr']);
  });

  it('refuses a hostnameOverride of blanks in the file, as upstream GetHostname does ("empty hostname is invalid")', () => {
    const file = parseConfigFile('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nhostnameOverride: "  "\n', 'c').values;
    expect(() => configFromFlags(mergeConfig(file, new Map()).values)).toThrow(
      'invalid --hostname-override "  ": empty hostname-override is invalid',
    );
  });

  it('lets the logging flags win over the file (upstream copyLogsFromFlags) and ignores the deprecated ports and ipvs flags (Complete)', () => {
    const file = parseConfigFile(
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nhealthzBindAddress: 127.0.0.1\nlogging:\n  format: json\n',
      'c',
    ).values;
    const flags = parseFlags(['--logging-format=text', '--vmodule=x=2', '--healthz-port=0', '--ipvs-sync-period=1m'], AGENT_FLAGS).values;
    const { values, ignored } = mergeConfig(file, flags);
    expect(ignored).toEqual(['--healthz-port', '--ipvs-sync-period']);
    expect(values.get('logging-format')).toBe('text');
    expect(configFromFlags(values)).toMatchObject({ healthzBindAddress: '127.0.0.1:10256', vmodule: 'x=2' });
  });

  it('checks logging.format as upstream logsapi.ValidateAndApply does: text or json, "" the default', () => {
    const doc = (format: string) => `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlogging:\n  format: ${format}\n`;
    expect(() => parseConfigFile(doc('xml'), 'c.yaml')).toThrow('c.yaml: logging.format: invalid value "xml": must be one of "text", "json"');
    expect(parseConfigFile(doc('""'), 'c.yaml').values.get('logging-format')).toBe('text');
    expect(parseConfigFile(doc('json'), 'c.yaml').values.get('logging-format')).toBe('json');
  });

  const file = (body: string) => `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${body}\n`;

  it('reads logging.vmodule as component-base decodes and checks it (VModuleConfiguration, logsapi.Validate; flags first, copyLogsFromFlags)', () => {
    const vmodule = (items: string) => file(`logging:\n  vmodule:\n${items}`);
    const parsed = (items: string) => parseConfigFile(vmodule(items), 'c.yaml').values;
    expect(parsed('  - filePattern: proxier*\n    verbosity: 4\n  - filePattern: x\n    verbosity: 0\n').get('vmodule')).toBe('proxier*=4,x=0');
    expect(
      configFromFlags(mergeConfig(parsed('  - filePattern: a\n    verbosity: 2\n'), parseFlags(['--vmodule=b=3'], AGENT_FLAGS).values).values)
        .vmodule,
    ).toBe('b=3,a=2');
    const refused: [string, string][] = [
      ['  - verbosity: 2\n', 'c.yaml: logging.vmodule[0].filePattern: Required value: File pattern must not be empty'],
      ['  - filePattern: a=b\n', 'c.yaml: logging.vmodule[0].filePattern: Invalid value: "a=b": File pattern must not contain equal sign or comma'],
      ['  - filePattern: a\n    verbosity: -1\n', 'c.yaml: logging.vmodule[0].verbosity: expected a non-negative integer, got number -1'],
      ['  - filePattern: a\n    verbosity: 2147483648\n', 'c.yaml: logging.vmodule[0].verbosity: Invalid value: 2147483648: Must be <= 2147483647'],
      ['    a: 1\n', 'c.yaml: logging.vmodule: expected a list of {filePattern, verbosity}'],
    ];
    for (const [items, message] of refused) expect(() => parsed(items), items).toThrow(message);
    // The JSON logger has no per-file verbosity, wherever the setting came from.
    expect(() =>
      configFromFlags(
        mergeConfig(parseConfigFile(file('logging:\n  format: json\n  vmodule:\n  - filePattern: a\n    verbosity: 2'), 'c.yaml').values, new Map())
          .values,
      ),
    ).toThrow('logging.vmodule: Forbidden: Only supported for text log format');
  });
  const fromFile = (body: string) => configFromFlags(mergeConfig(parseConfigFile(file(body), 'c.yaml').values, new Map()).values);

  it("reads logging.flushFrequency and each format's infoBufferSize as component-base decodes them (TimeOrMetaDuration, resource.Quantity; kubeadm's 0 is 5s)", () => {
    expect(fromFile('logging:\n  flushFrequency: 0\n  options:\n    text:\n      infoBufferSize: "0"').logFlushFrequencyMs).toBe(5000);
    expect(fromFile('logging:\n  flushFrequency: 2000000000').logFlushFrequencyMs).toBe(2000);
    expect(fromFile('logging:\n  flushFrequency: 1m').logFlushFrequencyMs).toBe(60_000);
    const gated = 'featureGates:\n  LoggingAlphaOptions: true\nlogging:\n  options:\n    text:\n      splitStream: true\n      infoBufferSize: ';
    expect(fromFile(`${gated}"64Ki"`).logInfoBufferSize).toBe(65536);
    expect(fromFile(`${gated}4096`).logInfoBufferSize).toBe(4096);
    // Without the gate a non-zero size is refused, wherever it came from; a bad one names the field.
    expect(() => fromFile('logging:\n  options:\n    json:\n      infoBufferSize: "1Mi"')).toThrow(
      'logging.options.json.infoBufferSize: Forbidden: Feature LoggingAlphaOptions is disabled',
    );
    expect(() => fromFile('logging:\n  options:\n    json:\n      infoBufferSize: "1K"')).toThrow(
      'c.yaml: logging.options.json.infoBufferSize: expected a quantity such as "0", 512 or "64Ki", got string "1K"',
    );
    expect(() => fromFile('logging:\n  flushFrequency: soon')).toThrow(
      'c.yaml: logging.flushFrequency: expected a duration such as "5s" or a number of nanoseconds, got string "soon"',
    );
  });

  it('takes the sync periods and masquerade settings from nftables: in nftables mode (upstream v1alpha1 conversion)', () => {
    const c = fromFile(
      'mode: nftables\niptables:\n  syncPeriod: 5s\n  masqueradeBit: 3\nnftables:\n  syncPeriod: 10s\n  minSyncPeriod: 2s\n  masqueradeAll: true\n  masqueradeBit: 12',
    );
    expect(c).toMatchObject({ mode: 'nftables', syncPeriodMs: 10_000, minSyncPeriodMs: 2000, masqueradeAll: true, masqueradeBit: 12 });
    // Left out (or zero): upstream's nftables defaults, not the iptables: values.
    expect(fromFile('mode: nftables\niptables:\n  syncPeriod: 5s\n  masqueradeAll: true\nnftables:\n  syncPeriod: 0s')).toMatchObject({
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 1000,
      masqueradeAll: false,
      masqueradeBit: 14,
      nodePortAddresses: ['primary'],
    });
    // Other modes read iptables: and only type-check nftables:.
    expect(fromFile('mode: iptables\nnftables:\n  syncPeriod: 10s\n  masqueradeBit: 40')).toMatchObject({ syncPeriodMs: 30_000, masqueradeBit: 14 });
    expect(() => parseConfigFile(file('mode: iptables\nnftables:\n  syncPeriod: 10'), 'c.yaml')).toThrow(/nftables.syncPeriod: expected a duration/);
  });

  it('names nftables.* fields in errors about them (upstream TestValidateV1Alpha1FieldPaths, TestValidateV1Alpha1SyncPeriodPaths)', () => {
    expect(() => parseConfigFile(file('mode: nftables\nnftables:\n  masqueradeBit: 32'), 'c.yaml')).toThrow(
      /c.yaml: nftables.masqueradeBit: invalid value "32".*must be between 0 and 31/,
    );
    expect(() => fromFile('mode: nftables\nnftables:\n  syncPeriod: 1s\n  minSyncPeriod: 2s')).toThrow(
      /nftables.minSyncPeriod \(2000ms\) must not exceed nftables.syncPeriod/,
    );
    expect(() => fromFile('mode: nftables\nnftables:\n  minSyncPeriod: -1s')).toThrow(/nftables.minSyncPeriod must be greater than or equal to 0/);
  });

  it('writes nftables mode settings into nftables: and reads them back (upstream Convert_config_KubeProxyConfiguration_To_v1alpha1)', () => {
    const values = parseFlags(['--mode=nftables', '--iptables-sync-period=45s', '--masquerade-all'], AGENT_FLAGS).values;
    const { doc } = configDocument(values, configFromFlags(values));
    expect(doc).toMatchObject({
      mode: 'nftables',
      nodePortAddresses: ['primary'],
      nftables: { syncPeriod: '45s', minSyncPeriod: '1s', masqueradeAll: true, masqueradeBit: 14 },
    });
    const again = parseConfigFile(dump(doc), 'roundtrip').values;
    expect(configFromFlags(again)).toEqual(configFromFlags(values));
  });

  it("writes logging as component-base's LoggingConfiguration encodes it (flushFrequency, each format's infoBufferSize, splitStream omitempty, vmodule as a list)", () => {
    const values = parseFlags(['--log-flush-frequency=7s', '--vmodule=proxier*=4,x=1'], AGENT_FLAGS).values;
    const { doc } = configDocument(values, configFromFlags(values));
    expect(doc['logging']).toEqual({
      verbosity: 0,
      format: 'text',
      flushFrequency: '7s',
      options: { text: { infoBufferSize: '0' }, json: { infoBufferSize: '0' } },
      vmodule: [
        { filePattern: 'proxier*', verbosity: 4 },
        { filePattern: 'x', verbosity: 1 },
      ],
    });
    expect(configFromFlags(parseConfigFile(dump(doc), 'roundtrip').values).vmodule).toBe('proxier*=4,x=1');
    const split = parseFlags(
      ['--feature-gates=LoggingAlphaOptions=true', '--log-json-split-stream', '--log-json-info-buffer-size=64Ki'],
      AGENT_FLAGS,
    ).values;
    expect((configDocument(split, configFromFlags(split)).doc['logging'] as { options: unknown }).options).toEqual({
      text: { infoBufferSize: '0' },
      json: { splitStream: true, infoBufferSize: '64Ki' },
    });
  });

  it('writes a document that reads back to the same configuration', () => {
    const values = parseFlags(['--cluster-cidr=10.0.0.0/8', '--iptables-sync-period=45s', '--masquerade-all'], AGENT_FLAGS).values;
    const again = parseConfigFile(dump(configDocument(values, configFromFlags(values)).doc), 'roundtrip').values;
    expect(configFromFlags(again)).toEqual(configFromFlags(values));
  });
});
