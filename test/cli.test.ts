/**
 * The CLI as a user runs it: the real entry point in a child process (Node 24),
 * exit codes, stdout holding only restore input, errors naming what is wrong.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dump } from 'js-yaml';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { logLines } from './log-lines.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function manifest(objects: unknown[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kpt-cli-'));
  const file = join(dir, 'objects.yaml');
  await writeFile(file, objects.map((o) => dump(o)).join('---\n'));
  return file;
}

describe('kube-proxy-ts render', { timeout: 30_000 }, () => {
  it('renders the example cluster: restore input only on stdout, skipped objects logged on stderr', async () => {
    const r = await cli(['render', '--objects', 'examples/cluster.yaml', '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.every((l) => /^(#|\*|:|-[AI] |COMMIT$)/.test(l))).toBe(true);
    expect(r.stdout).toContain(
      '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-',
    );
    // klog's text format by default (upstream's --logging-format=text), JSON lines with --logging-format=json.
    expect(r.stderr).toMatch(/^W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.-]+\.ts:\d+\] "skipped: Service default\/broken/m);
    const json = await cli([
      'render',
      '--objects',
      'examples/cluster.yaml',
      '--hostname-override',
      'node-1',
      '--cluster-cidr',
      '10.244.0.0/16',
      '--logging-format=json',
    ]);
    expect(json.stdout).toBe(r.stdout);
    for (const out of [r.stderr, json.stderr]) {
      const log = logLines(out).map((l) => ({ msg: l.msg, ...l.fields }));
      expect(log).toContainEqual(expect.objectContaining({ field: 'spec.ports[0].port', msg: expect.stringContaining('Service default/broken') }));
    }
    // component-base's zap JSON: ts, caller, msg, v (a warning is a V(0) line there).
    expect(
      json.stderr
        .trim()
        .split('\n')
        .every((l) => /^\{"ts":\d+,"caller":"[\w.-]+:\d+","msg":"(?:[^"\\]|\\.)*","v":0[,}]/.test(l)),
    ).toBe(true);
  });

  it('prints the IPv4 document, then the IPv6 one, or only the family asked for', async () => {
    const file = await manifest([
      makeNode('n1', { addresses: ['192.168.0.2', 'fd00::2'] }),
      makeService('ns', 'dual', { clusterIPs: ['172.30.0.5', 'fd00:172::5'] }),
      makeEndpointSlice('ns', 'dual', { addresses: ['10.0.0.5'] }),
      makeEndpointSlice('ns', 'dual', { addresses: ['fd00:10::5'] }),
    ]);
    const both = await cli(['render', '--objects', file, '--hostname-override', 'n1']);
    expect(both.code).toBe(0);
    const headers = both.stdout.split('\n').filter((l) => l.startsWith('# kube-proxy-ts'));
    expect(headers.map((h) => h.split(' ')[2])).toEqual(['IPv4', 'IPv6']);
    expect(both.stdout).toContain('--to-destination [fd00:10::5]:80');
    const v6 = await cli(['render', '--objects', file, '--hostname-override', 'n1', '--ip-family', 'IPv6']);
    expect(v6.stdout).not.toContain('172.30.0.5');
    expect(v6.stdout).toContain('-d fd00:172::5');
  });

  it.each([
    [['render'], 2, 'render needs --objects FILE'],
    [['render', '--objects', 'x', '--bogus'], 2, 'unknown flag: --bogus'],
    [['render', '--objects', 'x', '--iptables-masquerade-bit=40'], 2, 'invalid value "40" for --iptables-masquerade-bit'],
    [['render', '--objects', 'x', '--cluster-cidr=10.0.0.0/40'], 2, 'invalid --cluster-cidr "10.0.0.0/40"'],
    [['render', '--objects', '/nonexistent/file.yaml'], 1, 'cannot read --objects /nonexistent/file.yaml: ENOENT'],
    [['frobnicate'], 2, 'unknown command "frobnicate"'],
  ])('%j exits %i with "%s"', async (args, code, message) => {
    const r = await cli(args);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('render and trace warn, naming the node and --hostname-override, when the objects hold no Node of that name (upstream: "Failed to retrieve node info")', async () => {
    const file = await manifest([makeNode('node-1', { addresses: ['192.168.0.2'] }), makeService('ns', 'web', { clusterIPs: ['172.30.0.5'] })]);
    for (const mode of ['iptables', 'nftables']) {
      const r = await cli(['render', `--mode=${mode}`, '--objects', file, '--hostname-override', 'Node-1.example']);
      expect(r.code).toBe(0);
      const warnings = logLines(r.stderr).filter((l) => l.fields['node'] !== undefined);
      expect(warnings.map((w) => w.msg)).toEqual([
        `no Node object named "node-1.example" in ${file}: no node addresses, ${
          mode === 'nftables' ? 'no primary IP, so NodePorts match every local address but loopback' : 'NodePorts match LOCAL addresses only'
        }; no zone, so topology hints are ignored (use --hostname-override)`,
      ]);
      // trace --objects builds the same desired rules and says the same (its logs go to stdout, with its report).
      const t = await cli([
        'trace',
        `--mode=${mode}`,
        '--objects',
        file,
        '--hostname-override',
        'Node-1.example',
        '--src',
        '10.0.0.1',
        '--dst',
        '172.30.0.5:80/TCP',
      ]);
      expect(t.code, t.stderr).toBe(0);
      const logged = logLines(t.stdout).map((l) => l.msg);
      expect(logged).toContainEqual(expect.stringContaining(`no Node object named "node-1.example" in ${file}: no node addresses`));
    }
  });

  it('refuses a bad agent flag or config field before touching anything', async () => {
    const r = await cli(['--bogus-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag: --bogus-flag');
    const dir = await mkdtemp(join(tmpdir(), 'kpt-cli-'));
    const conf = join(dir, 'config.yaml');
    await writeFile(conf, 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables:\n  masqueradeBit: 99\n');
    const c = await cli(['--config', conf]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('iptables.masqueradeBit: invalid value "99"');
    const w = await cli(['--config', conf.replace('config', 'missing')]);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/cannot read --config .*ENOENT/);
  });

  it("-h and --help on any command print the usage and exit 0 once every flag has parsed, as cobra's help flag (a bad flag still exits 2, also with --version: verflag.PrintAndExitIfRequested runs after cobra's parse)", async () => {
    // In a network namespace of its own, and bounded: were help not honoured, this would start the agent.
    const contained = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile('unshare', ['-n', process.execPath, MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const dir = await mkdtemp(join(tmpdir(), 'kpt-cli-'));
    const conf = join(dir, 'config.yaml');
    await writeFile(conf, 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n');
    for (const args of [
      ['--v=2', '-h'],
      ['-h', '--v=2'],
      ['--version', '--help'],
      ['--config', conf, '--help'],
      ['--help=true'],
      ['render', '--objects', dir, '--help'],
      ['diff', '-h'],
      ['trace', '--help'],
      ['top', '-h'],
    ]) {
      const r = await contained(args);
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 0, '']);
      expect(r.stdout).toMatch(/^Usage:\n {2}kube-proxy-ts \[flags\]/);
    }
    // cobra parses every flag before it honours help, or kube-proxy's RunE prints --version (verflag).
    for (const args of [
      ['--bogus', '--help'],
      ['--help', '--bogus'],
      ['--version', '--bogus'],
    ]) {
      const bad = await contained(args);
      expect([args.join(' '), bad.code, bad.stdout, bad.stderr]).toEqual([args.join(' '), 2, '', 'error: unknown flag: --bogus\n']);
    }
    const badValue = await contained(['--version', '--iptables-sync-period=soon']);
    expect([badValue.code, badValue.stdout, badValue.stderr]).toEqual([2, '', expect.stringMatching(/^error: .*iptables-sync-period.*\n$/)]);
    const extraArg = await contained(['--version', 'extra']);
    expect([extraArg.code, extraArg.stdout, extraArg.stderr]).toEqual([2, '', 'error: unexpected argument "extra"\n']);
    const version = await contained(['--v=2', '--version']);
    expect([version.code, version.stdout]).toEqual([0, expect.stringMatching(/^kube-proxy-ts v\d/)]);
    const notBool = await contained(['--v=2', '--help=maybe']);
    expect([notBool.code, notBool.stderr]).toEqual([2, 'error: invalid argument "maybe" for "--help" flag: must be true or false\n']);
  });

  it('writes the effective configuration as a KubeProxyConfiguration', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-cli-'));
    const out = join(dir, 'written.yaml');
    const r = await cli(['--cluster-cidr=10.0.0.0/8', '--iptables-sync-period=45s', '--write-config-to', out]);
    expect(r.code).toBe(0);
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(out, 'utf8');
    expect(text).toContain('clusterCIDR: 10.0.0.0/8');
    expect(text).toMatch(/syncPeriod: 45s/);
  });

  it('names the file and line of a YAML syntax error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-cli-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: a\n');
    const r = await cli(['render', '--objects', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${file}.*line \\d+`));
  });

  it('programs every good object when one is malformed, and names the bad one', async () => {
    const file = await manifest([
      makeService('ns', 'good', { clusterIP: '172.30.0.7' }),
      makeEndpointSlice('ns', 'good', { addresses: ['10.0.0.7'] }),
      makeService('ns', 'bad-ip', { clusterIP: '172.30.0.999' }),
      makeService('ns', 'leading-zero', { clusterIP: '172.030.000.010' }),
    ]);
    const r = await cli(['render', '--objects', file, '--hostname-override', 'n1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-d 172.30.0.7 --dport 80');
    expect(r.stdout).toContain('-d 172.30.0.10 --dport 80'); // legacy leading zeros read as decimal, as upstream
    expect(r.stderr).toMatch(/Service ns\/bad-ip.*clusterIP/);
  });

  it("takes v1.37's --nodeport-addresses keywords: 'localhost' gives the iptables mode its 127.0.0.1 NodePorts, 'primary,localhost' gives the nftables mode the node IP (loopback named as unsupported, as upstream without its localhost proxy)", async () => {
    const file = await manifest([
      makeNode('n1', { addresses: ['192.168.0.2'] }),
      makeService('ns', 'np', { clusterIP: '172.30.0.8', type: 'NodePort', ports: [{ name: 'p', port: 80, nodePort: 30080 }] }),
      makeEndpointSlice('ns', 'np', { addresses: ['10.0.0.8'], ports: [{ name: 'p', port: 8080 }] }),
    ]);
    const ipt = await cli(['render', '--objects', file, '--hostname-override', 'n1', '--nodeport-addresses=localhost']);
    expect(ipt.code, ipt.stderr).toBe(0);
    expect(ipt.stdout).toContain(
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 127.0.0.1 -j KUBE-NODEPORTS',
    );
    expect(ipt.stdout).not.toContain('-d 192.168.0.2 -j KUBE-NODEPORTS');
    const nft = await cli(['render', '--mode=nftables', '--objects', file, '--hostname-override', 'n1', '--nodeport-addresses=primary,localhost']);
    expect(nft.code, nft.stderr).toBe(0);
    expect(nft.stdout).toMatch(/^add set ip kube-proxy nodeport-ips \{ type ipv4_addr ; comment "[^"]*" ; elements = \{ 192\.168\.0\.2 \} ; \}$/m);
    expect(nft.stdout).not.toMatch(/elements = \{[^}]*127\./);
    expect(nft.stderr).toContain('localhost NodePorts are not supported');
  });

  it('--feature-gates=AllowServiceExternalIPs=false leaves the externalIPs unprogrammed in both rule-writing modes, as upstream v1.36+ (KEP-5707, #137293: the service port reports no external IPs while the deprecated gate is off); on by default', async () => {
    const file = await manifest([
      makeService('ns', 'ext', { clusterIP: '172.30.0.9', externalIPs: ['192.168.99.10'] }),
      makeEndpointSlice('ns', 'ext', { addresses: ['10.0.0.9'] }),
    ]);
    for (const mode of ['iptables', 'nftables']) {
      const on = await cli(['render', `--mode=${mode}`, '--objects', file, '--hostname-override', 'n1']);
      expect(on.code, on.stderr).toBe(0);
      expect(on.stdout).toContain('192.168.99.10');
      const off = await cli([
        'render',
        `--mode=${mode}`,
        '--objects',
        file,
        '--hostname-override',
        'n1',
        '--feature-gates=AllowServiceExternalIPs=false',
      ]);
      expect(off.code, off.stderr).toBe(0);
      expect(off.stdout).toContain('172.30.0.9');
      expect(off.stdout).not.toContain('192.168.99.10');
      // A gate it acts on: no "not acted on" warning.
      expect(off.stderr).not.toContain('AllowServiceExternalIPs');
    }
  });
});

describe('compile cache', { timeout: 60_000 }, () => {
  const run = (env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> =>
    new Promise((resolve) => execFile(process.execPath, [MAIN, 'help'], { env }, (err, stdout) => resolve({ code: err ? 1 : 0, stdout })));
  const count = async (dir: string): Promise<number> => (await readdir(dir, { recursive: true }).catch(() => [])).length;
  const baseEnv = (): NodeJS.ProcessEnv => {
    const env = { ...process.env };
    delete env['NODE_COMPILE_CACHE'];
    delete env['NODE_DISABLE_COMPILE_CACHE'];
    return env;
  };

  it("keeps compiled modules in the package's node_modules/.cache by default", async () => {
    const first = await run(baseEnv());
    expect(first.code).toBe(0);
    expect(await count(new URL('../node_modules/.cache/kube-proxy-ts-compile', import.meta.url).pathname)).toBeGreaterThan(10);
  });

  it('uses NODE_COMPILE_CACHE when set; a second run reads what the first wrote and prints the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-compile-cache-'));
    const first = await run({ ...baseEnv(), NODE_COMPILE_CACHE: dir });
    const entries = await count(dir);
    expect(entries).toBeGreaterThan(10);
    const second = await run({ ...baseEnv(), NODE_COMPILE_CACHE: dir });
    expect(second).toEqual(first);
    expect(await count(dir)).toBe(entries);
  });
});
