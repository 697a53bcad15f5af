import { describe, expect, it } from 'vitest';
import { configFromFlags, quantityBytes } from './config.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { FlagError, flagzFlags, formatDuration, goFormatFloat32, parseDuration, parseFlags, type FlagValue } from './flags.ts';
import { USAGE } from './commands.ts';

const parse = (...argv: string[]) => parseFlags(argv, AGENT_FLAGS);

describe('parseFlags', () => {
  it('accepts pflag syntax: --a=b, --a b, bare booleans, -v', () => {
    const { values } = parse(
      '--cluster-cidr=10.0.0.0/8',
      '--hostname-override',
      'node-1',
      '--masquerade-all',
      '-v=4',
      '--iptables-localhost-nodeports=false',
    );
    expect(Object.fromEntries(values)).toEqual({
      'cluster-cidr': '10.0.0.0/8',
      'hostname-override': 'node-1',
      'masquerade-all': true,
      v: 4,
      'iptables-localhost-nodeports': false,
    });
  });

  it('reads -v as pflag reads a shorthand (parseShortArg): -v=4, -v4, -v 4, and --v=4 as the long name', () => {
    for (const argv of [['-v=4'], ['-v4'], ['-v', '4'], ['--v=4'], ['--v', '4']]) expect(parse(...argv).values.get('v'), argv.join(' ')).toBe(4);
    expect(parse('-h').values.get('help')).toBe(true);
  });

  it.each([
    // A Go-flag-style single-dash long name is a run of shorthands to pflag: its first letter is unknown.
    [['-kubeconfig=/etc/kube-proxy.conf'], "unknown shorthand flag: 'k' in -kubeconfig=/etc/kube-proxy.conf"],
    [['--masquerade-all', '-5s'], "unknown shorthand flag: '5' in -5s"],
    [['-eX^U=3*'], "unknown shorthand flag: 'e' in -eX^U=3*"],
    [["-'x"], "unknown shorthand flag: '\\'' in -'x"],
    [['-\tx'], "unknown shorthand flag: '\\t' in -\tx"],
    [['-\u00e9t\u00e9'], "unknown shorthand flag: '\u00c3' in -\u00e9t\u00e9"],
    [['-v'], "flag needs an argument: 'v' in -v"],
    [['---v=4'], 'bad flag syntax: ---v=4'],
    [['--=4'], 'bad flag syntax: --=4'],
    [['--no-such-flag=1'], 'unknown flag: --no-such-flag'],
  ])('refuses %j as pflag does (%s)', (argv, message) => {
    expect(() => parse(...argv)).toThrow(FlagError);
    expect(() => parse(...argv)).toThrow(message);
  });

  it('accumulates repeated list flags', () => {
    expect(parse('--nodeport-addresses=10.0.0.0/8,192.168.0.0/16', '--nodeport-addresses', '127.0.0.0/8').values.get('nodeport-addresses')).toEqual([
      '10.0.0.0/8',
      '192.168.0.0/16',
      '127.0.0.0/8',
    ]);
  });

  it.each([
    [['--no-such-flag'], /unknown flag: --no-such-flag/],
    [['--iptables-masquerade-bit=32'], /invalid value "32" for --iptables-masquerade-bit: must be between 0 and 31/],
    [['--traffic-counters-max-endpoints=0'], /invalid value "0" for --traffic-counters-max-endpoints: must be greater than or equal to 1/],
    [['--iptables-sync-period=soon'], /--iptables-sync-period: must be a duration/],
    [['--masquerade-all=maybe'], /must be true or false/],
    [['--mode=ipvs'], /--mode: must be one of/],
    [['--hostname-override'], /flag needs an argument: --hostname-override/],
    [['--feature-gates=A=yes'], /key=true\|false/],
  ])('rejects %j naming the flag', (argv, message) => {
    expect(() => parse(...argv)).toThrow(FlagError);
    expect(() => parse(...argv)).toThrow(message);
  });
});

describe('durations', () => {
  it('parses and prints Go durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1m0s')).toBe(60_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('30')).toBeNull();
    expect(formatDuration(900_000)).toBe('15m0s');
  });
});

describe('configFromFlags', () => {
  it('applies upstream defaults', () => {
    const c = configFromFlags(new Map());
    expect(c).toMatchObject({
      mode: 'iptables',
      masqueradeBit: 14,
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 1000,
      localhostNodePorts: true,
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '127.0.0.1:10249',
      udpIdleTimeoutMs: 250,
      detectLocalMode: 'ClusterCIDR',
      nodePortAddresses: [],
      clusterCIDRs: [],
    });
  });

  it.each([['--mode=nftables'], ['--proxy-mode=nftables']])('accepts %s (upstream validateProxyMode on Linux)', (flag) => {
    expect(configFromFlags(parse(flag).values).mode).toBe('nftables');
  });

  it.each([
    [{ 'cluster-cidr': '10.0.0.0/33' }, /invalid --cluster-cidr "10.0.0.0\/33"/],
    [{ 'cluster-cidr': '10.0.0.0/8,11.0.0.0/8' }, /at most one CIDR per IP family/],
    [{ 'nodeport-addresses': ['bogus'] }, /invalid --nodeport-addresses entry "bogus"/],
    [{ 'healthz-bind-address': '0.0.0.0:65536' }, /invalid --healthz-bind-address "0.0.0.0:65536": expected ip or ip:port/],
    [{ 'metrics-bind-address': 'localhost:10249' }, /invalid --metrics-bind-address "localhost:10249"/],
    [{ 'iptables-min-sync-period': 60_000 }, /must not exceed --iptables-sync-period/],
    [{ 'proxy-port-range': '30000-20000' }, /invalid --proxy-port-range "30000-20000"/],
    [{ 'udp-timeout': 0 }, /--udp-timeout must be greater than 0/],
    [{ 'traffic-counters-period': 0 }, /--traffic-counters-period must be greater than 0/],
  ])('rejects inconsistent values %j', (given, message) => {
    expect(() => configFromFlags(new Map(Object.entries(given)))).toThrow(message);
  });

  it("accepts v1.37's --nodeport-addresses keywords 'primary', 'localhost' and 'all', combined with each other and with CIDRs (kube-proxy a49df23, #138427); a keyword given twice or misspelt is refused", () => {
    const npa = (...v: string[]) => configFromFlags(new Map<string, FlagValue>([['nodeport-addresses', v]])).nodePortAddresses;
    expect(npa('primary', 'localhost')).toEqual(['primary', 'localhost']);
    expect(npa('all')).toEqual(['all']);
    expect(npa('localhost')).toEqual(['localhost']);
    expect(npa('primary', '127.0.0.1/32')).toEqual(['primary', '127.0.0.1/32']);
    expect(npa('all', 'localhost', '10.0.0.0/8')).toEqual(['all', 'localhost', '10.0.0.0/8']);
    expect(() => npa('localhost', 'localhost')).toThrow(/--nodeport-addresses: "localhost" given more than once/);
    expect(() => npa('Localhost')).toThrow(/invalid --nodeport-addresses entry "Localhost": not a CIDR or one of "primary", "localhost", "all"/);
  });

  it("accepts --mode=nftables with upstream's defaults for it: NodePorts on the primary IPs, mark bit 14 (platformApplyDefaults)", () => {
    const c = configFromFlags(new Map([['mode', 'nftables']]));
    expect(c).toMatchObject({ mode: 'nftables', masqueradeBit: 14, nodePortAddresses: ['primary'], syncPeriodMs: 30_000, minSyncPeriodMs: 1000 });
    expect(
      configFromFlags(
        new Map<string, FlagValue>([
          ['mode', 'nftables'],
          ['nodeport-addresses', ['0.0.0.0/0']],
        ]),
      ).nodePortAddresses,
    ).toEqual(['0.0.0.0/0']);
    expect(configFromFlags(new Map()).nodePortAddresses).toEqual([]);
  });

  it('applies --iptables-sync-period, --iptables-min-sync-period and --masquerade-all to nftables mode, not --iptables-masquerade-bit (upstream processV1Alpha1Flags)', () => {
    const flags = parse(
      '--proxy-mode=nftables',
      '--iptables-sync-period=45s',
      '--iptables-min-sync-period=0s',
      '--masquerade-all',
      '--iptables-masquerade-bit=13',
    ).values;
    const c = configFromFlags(flags);
    expect(c).toMatchObject({ syncPeriodMs: 45_000, minSyncPeriodMs: 0, masqueradeAll: true, masqueradeBit: 14 });
    expect(c.notImplemented).toEqual([expect.stringMatching(/^--iptables-masquerade-bit: not used in nftables mode/)]);
    expect(() => configFromFlags(parse('--mode=nftables', '--iptables-min-sync-period=1m').values)).toThrow(
      /--iptables-min-sync-period \(60000ms\) must not exceed --iptables-sync-period/,
    );
  });

  it('has no flags for the nftables: config section, as upstream', () => {
    expect(() => parse('--nftables-sync-period=10s')).toThrow('unknown flag: --nftables-sync-period');
    expect(USAGE).not.toContain('nftables-sync-period');
  });

  it('--healthz-port and --metrics-port: a bare bind IP gets their port, 0 disables the server, the default address keeps its own (upstream addressFromDeprecatedFlags)', () => {
    const config = (...argv: string[]) => configFromFlags(parse(...argv).values);
    expect(config('--healthz-port=12345')).toMatchObject({ healthzBindAddress: '0.0.0.0:10256', metricsBindAddress: '127.0.0.1:10249' });
    expect(config('--healthz-bind-address=127.0.0.1', '--healthz-port=12345').healthzBindAddress).toBe('127.0.0.1:12345');
    expect(config('--metrics-bind-address=::', '--metrics-port=9100').metricsBindAddress).toBe('[::]:9100');
    expect(config('--healthz-port=0', '--metrics-port=0')).toMatchObject({ healthzBindAddress: '', metricsBindAddress: '' });
    expect(config('--healthz-port=0').deprecated).toEqual([
      'Flag --healthz-port has been deprecated, This flag is deprecated and will be removed in a future release. Please use --healthz-bind-address instead.',
    ]);
    expect(config().deprecated).toEqual([]);
    expect(() => parse('--metrics-port=70000')).toThrow(FlagError);
    // --write-config-to writes the addresses as given (Complete applies the ports only to a running agent).
    expect(config('--healthz-port=0', '--write-config-to=/tmp/x').healthzBindAddress).toBe('0.0.0.0:10256');
  });

  it("accepts upstream's ipvs and logging flags (kube-up's GCE nodes pass --ipvs-sync-period), warning about what it does not act on (not --vmodule)", () => {
    const c = configFromFlags(
      parse('--ipvs-sync-period=1m', '--ipvs-min-sync-period=10s', '--ipvs-scheduler=rr', '--ipvs-strict-arp', '--vmodule=proxier*=4,x=0').values,
    );
    expect(c.notImplemented).toEqual([
      '--ipvs-sync-period: ipvs mode is not supported (upstream reads it in ipvs mode only)',
      '--ipvs-min-sync-period: ipvs mode is not supported (upstream reads it in ipvs mode only)',
      '--ipvs-scheduler: ipvs mode is not supported (upstream reads it in ipvs mode only)',
      '--ipvs-strict-arp: ipvs mode is not supported (upstream reads it in ipvs mode only)',
    ]);
    expect(c.vmodule).toBe('proxier*=4,x=0');
    // Not ipvs's: the iptables mode's periods stay the defaults (upstream processV1Alpha1Flags).
    expect(c).toMatchObject({ syncPeriodMs: 30_000, minSyncPeriodMs: 1000 });
    expect(() => parse('--logging-format=xml')).toThrow('invalid value "xml" for --logging-format: must be one of "text", "json"');
  });

  it.each([
    ['a=1,b', 'syntax error: expect comma-separated list of filename=N'],
    ['a=x', 'syntax error: expect comma-separated list of filename=N'],
    ['=1', 'syntax error: expect comma-separated list of filename=N'],
    ['a=-1', 'negative value for vmodule level'],
  ])('refuses --vmodule=%s as klog moduleSpec.Set does', (value, why) => {
    expect(() => configFromFlags(parse(`--vmodule=${value}`).values)).toThrow(`invalid argument "${value}" for "--vmodule" flag: ${why}`);
  });

  it('refuses a --hostname-override of blanks, and takes "" as the OS hostname (upstream processHostnameOverrideFlag, GetHostname)', () => {
    for (const value of [' ', '\t ']) {
      expect(() => configFromFlags(parse(`--hostname-override=${value}`).values)).toThrow(
        `invalid --hostname-override ${JSON.stringify(value)}: empty hostname-override is invalid`,
      );
    }
    expect(configFromFlags(parse('--hostname-override=').values).hostnameOverride).toBe('');
    expect(configFromFlags(parse('--hostname-override= Node-1 ').values).hostnameOverride).toBe(' Node-1 ');
  });

  it('refuses --vmodule with --logging-format=json, and accepts an empty one (component-base logsapi.Validate)', () => {
    expect(() => configFromFlags(parse('--logging-format=json', '--vmodule=x=2').values)).toThrow(
      'initialize logging: logging.vmodule: Forbidden: Only supported for text log format',
    );
    expect(configFromFlags(parse('--logging-format=json', '--vmodule=').values).loggingFormat).toBe('json');
    expect(configFromFlags(parse('--logging-format=text', '--vmodule=x=2').values).vmodule).toBe('x=2');
  });

  it('takes --log-*-split-stream and --log-*-info-buffer-size only with LoggingAlphaOptions (component-base validateTextOptions, validateJSONOptions)', () => {
    expect(() => configFromFlags(parse('--log-text-split-stream').values)).toThrow(
      'initialize logging: logging.options.text.splitStream: Forbidden: Feature LoggingAlphaOptions is disabled',
    );
    expect(() => configFromFlags(parse('--logging-format=json', '--log-json-info-buffer-size=64Ki').values)).toThrow(
      'initialize logging: logging.options.json.infoBufferSize: Forbidden: Feature LoggingAlphaOptions is disabled',
    );
    expect(() => configFromFlags(parse('--log-json-info-buffer-size=lots').values)).toThrow(
      `invalid argument "lots" for "--log-json-info-buffer-size" flag: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
    );
    // resource.Quantity's suffixes only (`1K` is not one: `1k` is), as upstream's flag parses them.
    expect(() => configFromFlags(parse('--log-json-info-buffer-size=1K').values)).toThrow(
      `invalid argument "1K" for "--log-json-info-buffer-size" flag: unable to parse quantity's suffix`,
    );
    // A zero size is the default in any spelling; the split stream is the format's own.
    expect(configFromFlags(parse('--log-text-info-buffer-size=0Ki', '--log-json-split-stream=false').values).logSplitStream).toBe(false);
    for (const gate of ['LoggingAlphaOptions=true', 'AllAlpha=true']) {
      const c = configFromFlags(parse(`--feature-gates=${gate}`, '--log-text-split-stream', '--log-text-info-buffer-size=1Mi').values);
      expect(c.logSplitStream).toBe(true);
      expect(c.logInfoBufferSize).toBe(2 ** 20);
      expect(c.notImplemented.filter((n) => n.includes('buffer'))).toEqual([]);
      expect(configFromFlags(parse(`--feature-gates=${gate}`, '--log-text-split-stream', '--logging-format=json').values).logSplitStream).toBe(false);
    }
    expect(() => configFromFlags(parse('--feature-gates=AllAlpha=true,LoggingAlphaOptions=false', '--log-json-split-stream').values)).toThrow(
      'Feature LoggingAlphaOptions is disabled',
    );
  });

  it('refuses --logging-format=json when LoggingBetaOptions is off, as logsapi.Validate refuses a disabled format', () => {
    for (const gates of ['LoggingBetaOptions=false', 'AllBeta=false'])
      expect(() => configFromFlags(parse('--logging-format=json', `--feature-gates=${gates}`).values)).toThrow(
        'initialize logging: logging.format: Forbidden: Log format json is disabled, see LoggingBetaOptions feature',
      );
    expect(configFromFlags(parse('--logging-format=json', '--feature-gates=AllBeta=false,LoggingBetaOptions=true').values).loggingFormat).toBe(
      'json',
    );
    expect(configFromFlags(parse('--logging-format=text', '--feature-gates=LoggingBetaOptions=false').values).loggingFormat).toBe('text');
    // A gate kube-proxy-ts acts on: no "does not act on" warning.
    expect(configFromFlags(parse('--feature-gates=LoggingBetaOptions=true').values).notImplemented).toEqual([]);
  });

  it('lists compatibility-only flags that were set', () => {
    expect(configFromFlags(new Map([['kube-api-qps', 50]])).notImplemented).toEqual(['--kube-api-qps: only watches are used']);
  });
});

describe('quantityBytes: resource.Quantity as bytes (the --log-*-info-buffer-size flags)', () => {
  it.each([
    ['512', 512],
    ['1k', 1000],
    ['2Ki', 2048],
    ['1.5Mi', 1.5 * 2 ** 20],
    ['1e3', 1000],
    ['1E3', 1000],
    ['0Ki', 0],
    ['3M', 3e6],
    ['0.5', 1],
  ])('%s is %d bytes', (text, bytes) => {
    expect(quantityBytes(text)).toBe(bytes);
  });

  it.each(['1K', 'lots', '1Kb', '', '1kk'])('refuses %j', (text) => {
    expect(quantityBytes(text)).toBeNull();
  });
});

describe("flagzFlags: the command line as upstream's /flagz reads it (flagz.NamedFlagSetsReader.GetFlagz: each pflag Value.String())", () => {
  it("gives every flag, the value given or its default, in pflag's text; cobra's help and verflag's version too; no file-only field", () => {
    const { values } = parse(
      '--iptables-sync-period=1m',
      '--nodeport-addresses',
      '10.0.0.0/8,fd00::/64',
      '--feature-gates',
      'ComponentStatusz=false,AllBeta=true',
      '--kube-api-qps',
      '1000000',
      '-v',
      '4',
      '--masquerade-all',
    );
    const flags = flagzFlags(AGENT_FLAGS, values);
    expect(flags).toMatchObject({
      'iptables-sync-period': '1m0s',
      'nodeport-addresses': '[10.0.0.0/8,fd00::/64]',
      'feature-gates': 'AllBeta=true,ComponentStatusz=false',
      'kube-api-qps': '1e+06',
      v: '4',
      'masquerade-all': 'true',
      'healthz-bind-address': '0.0.0.0:10256',
      'conntrack-tcp-timeout-established': '24h0m0s',
      'ipvs-exclude-cidrs': '[]',
      help: 'false',
      version: 'false',
    });
    expect(Object.keys(flags).filter((k) => k.startsWith('nftables-'))).toEqual([]);
    expect(Object.keys(flags).sort()).toEqual([...AGENT_FLAGS.filter((s) => !s.fileOnly).map((s) => s.name), 'help', 'version'].sort());
  });

  it("writes float32 flags as strconv.FormatFloat(f, 'g', -1, 32)", () => {
    expect([5, 0.1, 0.0001, 0.00001, 123456, 1234567, 1.5e7, -2.5].map(goFormatFloat32)).toEqual([
      '5',
      '0.1',
      '0.0001',
      '1e-05',
      '123456',
      '1.234567e+06',
      '1.5e+07',
      '-2.5',
    ]);
  });
});
