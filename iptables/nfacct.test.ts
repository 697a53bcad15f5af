/**
 * The nfacct seam (upstream pkg/proxy/util/nfacct through Debian's tool) and the iptables mode's use of it: counters
 * made on full syncs (upstream syncProxyRules' Ensure loop), rules that count into the ones that exist
 * (nfacctMatchArgs), and the packets read back for the metrics.
 */
import { describe, expect, it } from 'vitest';
import type { CommandRunner, RunResult } from '../proxier/exec.ts';
import { ManualClock } from '../proxier/clock.ts';
import type { Logger } from '../proxier/log.ts';
import type { IPFamily } from '../proxier/types.ts';
import { endpoint, nodeInfo, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { FakeIptables } from './fake-iptables.ts';
import { RestoreError, type Iptables } from './iptables.ts';
import { IptablesMode } from './iptables-mode.ts';
import { CT_STATE_INVALID_DROPPED, ensureCounters, LOCALHOST_NODEPORTS_ACCEPTED, nfacctTool, parseNfacctList, type Nfacct } from './nfacct.ts';
import { DEFAULT_RENDER_OPTIONS } from './render.ts';
import { getChain } from './ruleset.ts';

/** A node's nfacct as the tool behaves (add refuses an existing name with EBUSY); `fail` answers a command with an error. */
function toolRunner(opts: { counters?: Map<string, number>; fail?: (args: readonly string[]) => RunResult | Error | null } = {}) {
  const counters = opts.counters ?? new Map<string, number>();
  const commands: string[] = [];
  const runner: CommandRunner = {
    async run(cmd, args) {
      commands.push([cmd, ...args].join(' '));
      expect(cmd).toBe('nfacct');
      const failure = opts.fail?.(args);
      if (failure instanceof Error) throw failure;
      if (failure) return failure;
      const [verb, name] = args;
      const line = (n: string) => `{ pkts = ${String(counters.get(n)).padStart(20, '0')}, bytes = ${'0'.repeat(20)} } = ${n};\n`;
      if (verb === 'get')
        return counters.has(name!)
          ? { code: 0, stdout: line(name!), stderr: '' }
          : { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: No such file or directory\n' };
      if (verb === 'add') {
        if (counters.has(name!)) return { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: Device or resource busy\n' };
        counters.set(name!, 0);
        return { code: 0, stdout: '', stderr: '' };
      }
      if (verb === 'list') return { code: 0, stdout: [...counters.keys()].map(line).join(''), stderr: '' };
      throw new Error(`unexpected nfacct ${args.join(' ')}`);
    },
  };
  return { runner, counters, commands };
}

describe('nfacct (upstream pkg/proxy/util/nfacct: Ensure, Get, List)', () => {
  it('parses `nfacct list` as the tool prints it', () => {
    expect(
      parseNfacctList(
        '{ pkts = 00000000000000000012, bytes = 00000000000000000840 } = ct_state_invalid_dropped_pkts;\n' +
          '{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = localhost_nps_accepted_pkts;\n\n',
      ),
    ).toEqual([
      { name: CT_STATE_INVALID_DROPPED, packets: 12, bytes: 840 },
      { name: LOCALHOST_NODEPORTS_ACCEPTED, packets: 0, bytes: 0 },
    ]);
    expect(parseNfacctList('')).toEqual([]);
  });

  it('Ensure: a get, and an add only for a counter that is not there; an add lost to another writer (EBUSY) is no failure', async () => {
    const node = toolRunner({ counters: new Map([[CT_STATE_INVALID_DROPPED, 7]]) });
    const tool = nfacctTool(node.runner);
    await tool.ensure(CT_STATE_INVALID_DROPPED);
    await tool.ensure(LOCALHOST_NODEPORTS_ACCEPTED);
    expect(node.commands).toEqual([
      `nfacct get ${CT_STATE_INVALID_DROPPED}`,
      `nfacct get ${LOCALHOST_NODEPORTS_ACCEPTED}`,
      `nfacct add ${LOCALHOST_NODEPORTS_ACCEPTED}`,
    ]);
    expect(await tool.list()).toEqual([
      { name: CT_STATE_INVALID_DROPPED, packets: 7, bytes: 0 },
      { name: LOCALHOST_NODEPORTS_ACCEPTED, packets: 0, bytes: 0 },
    ]);
    // Someone else adds it between our get and our add.
    let raced = false;
    const racing = toolRunner({
      fail: (args) => {
        if (args[0] === 'get' && !raced) return { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: No such file or directory\n' };
        if (args[0] === 'add') {
          raced = true;
          return { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: Device or resource busy\n' };
        }
        return null;
      },
      counters: new Map([['x', 0]]),
    });
    await expect(nfacctTool(racing.runner).ensure('x')).resolves.toBeUndefined();
  });

  it("says why a counter cannot be made, and tells a missing tool apart (exec error or a shell's 127)", async () => {
    const refused = toolRunner({
      fail: (args) => (args[0] === 'add' ? { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: Operation not permitted\n' } : null),
    });
    await expect(nfacctTool(refused.runner).ensure('x')).rejects.toThrow(
      'nfacct add x exited with code 1: nfacct v1.0.2: error: Operation not permitted',
    );
    const r = await ensureCounters(nfacctTool(refused.runner));
    expect([[...r.made], r.failures.map((f) => f.counter), r.toolMissing]).toEqual([
      [],
      [CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED],
      null,
    ]);

    for (const fail of [() => new Error('spawn nfacct ENOENT'), () => ({ code: 127, stdout: '', stderr: 'nfacct: not found\n' })]) {
      const missing = await ensureCounters(nfacctTool(toolRunner({ fail }).runner));
      expect(missing.toolMissing).toMatch(/^cannot start nfacct: /);
      expect([missing.made.size, missing.failures]).toEqual([0, []]);
    }
  });
});

describe('the iptables mode and its nfacct counters (upstream syncProxyRules, nfacctMatchArgs)', () => {
  const nodePortService = portState(servicePort({ key: 'ns/np:p80', namespace: 'ns', name: 'np', clusterIP: '172.30.0.9', nodePort: 30080 }), [
    endpoint('10.0.1.5'),
  ]);
  const snapshot = snapshotOf([nodePortService], { node: nodeInfo({ addresses: ['192.168.0.2'] }) });

  function modeWith(nfacct: Nfacct | undefined, fake = new FakeIptables({ family: 'IPv4' })) {
    const lines: string[] = [];
    const log = (level: string) => (a: unknown, b?: string) => void lines.push(`${level} ${typeof a === 'string' ? a : `${b} ${JSON.stringify(a)}`}`);
    const logger: Logger = { debug: () => undefined, info: log('I'), warn: log('W'), error: log('E'), child: () => logger };
    const mode = new IptablesMode(
      { iptables: new Map<IPFamily, Iptables>([['IPv4', fake]]), render: DEFAULT_RENDER_OPTIONS, canaryPeriodMs: 1000 },
      { clock: new ManualClock(), logger, ...(nfacct ? { nfacct } : {}) },
    );
    const rules = () => ({
      forward: getChain(fake.snapshot(), 'filter', 'KUBE-FORWARD')?.rules[0],
      nodePorts: getChain(fake.snapshot(), 'nat', 'KUBE-NODEPORTS')?.rules ?? [],
    });
    return { mode, rules, lines, fake };
  }

  it('makes the counters on a full sync and counts into them: the INVALID drop and a 127.0.0.0/8 rule before each NodePort rule', async () => {
    const node = toolRunner();
    const { mode, rules, lines } = modeWith(nfacctTool(node.runner));
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect([...node.counters.keys()]).toEqual([CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED]);
    expect(rules().forward).toBe('-m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP');
    expect(rules().nodePorts).toEqual([
      expect.stringMatching(
        /^-m comment --comment ns\/np:p80 -m tcp -p tcp -d 127\.0\.0\.0\/8 --dport 30080 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-/,
      ),
      expect.stringMatching(/^-m comment --comment ns\/np:p80 -m tcp -p tcp --dport 30080 -j KUBE-EXT-/),
    ]);
    expect(lines).toEqual([]);
    // The metrics' reading: packets per counter.
    node.counters.set(LOCALHOST_NODEPORTS_ACCEPTED, 3);
    expect(await mode.inspect.nfacctPackets?.()).toEqual(
      new Map([
        [CT_STATE_INVALID_DROPPED, 0],
        [LOCALHOST_NODEPORTS_ACCEPTED, 3],
      ]),
    );
    // A partial sync asks nothing of nfacct.
    const asked = node.commands.length;
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(node.commands.length).toBe(asked);
  });

  it('leaves a counter that cannot be made out of the rules, says so as upstream does, and uses it from the full sync after it can be made', async () => {
    let refuse = true;
    const node = toolRunner({
      fail: (args) =>
        refuse && args[0] === 'add' && args[1] === LOCALHOST_NODEPORTS_ACCEPTED
          ? { code: 1, stdout: '', stderr: 'nfacct v1.0.2: error: Cannot allocate memory\n' }
          : null,
    });
    const { mode, rules, lines } = modeWith(nfacctTool(node.runner));
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(rules().forward).toContain('-m nfacct --nfacct-name ct_state_invalid_dropped_pkts');
    expect(rules().nodePorts).toHaveLength(1);
    expect(rules().nodePorts[0]).not.toContain('nfacct');
    expect(lines).toEqual([
      expect.stringMatching(
        /^E Failed to create nfacct counter; the corresponding metric will not be updated .*Cannot allocate memory.*"counter":"localhost_nps_accepted_pkts"/,
      ),
    ]);
    expect([...((await mode.inspect.nfacctPackets?.()) ?? new Map()).keys()]).toEqual([CT_STATE_INVALID_DROPPED]);
    refuse = false;
    mode.requestFullSync();
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(rules().nodePorts).toHaveLength(2);
    expect(rules().nodePorts[0]).toContain('-m nfacct --nfacct-name localhost_nps_accepted_pkts');
  });

  it('probes the nfacct match once and, on a kernel without xt_nfacct (kubernetes#142068), writes the Service rules without counters instead of failing every restore', async () => {
    // As iptables-restore answers when nft_compat cannot find the match: the whole restore fails.
    class NoNfacctMatch extends FakeIptables {
      probes = 0;
      override async restore(text: string, opts: { noflush: boolean; counters: boolean }): Promise<void> {
        if (text.includes('-A KUBE-PROXY-CANARY -m nfacct')) this.probes++;
        if (text.includes('-m nfacct'))
          throw new RestoreError({
            message: 'iptables-restore: line 3 failed: RULE_APPEND failed (No such file or directory)',
            exitCode: 1,
            stderr: 'iptables-nft-restore: line 3 failed: RULE_APPEND failed (No such file or directory): rule in chain KUBE-PROXY-CANARY\n',
            line: 3,
            context: '',
          });
        return super.restore(text, opts);
      }
    }
    const fake = new NoNfacctMatch({ family: 'IPv4' });
    const node = toolRunner();
    const { mode, rules, lines } = modeWith(nfacctTool(node.runner), fake);
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(rules().forward).toBe('-m conntrack --ctstate INVALID -j DROP');
    expect(rules().nodePorts).toHaveLength(1);
    expect(getChain(fake.snapshot(), 'nat', 'KUBE-SERVICES')?.rules.length).toBeGreaterThan(0);
    expect(lines).toEqual([expect.stringMatching(/^E iptables cannot match nfacct counters .*kubernetes#142068.*RULE_APPEND failed/)]);
    // No samples: nothing counts into the counters.
    expect(await mode.inspect.nfacctPackets?.()).toEqual(new Map());
    // Probed once: the next full sync does not try again.
    mode.requestFullSync();
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(lines).toHaveLength(1);
    expect(fake.probes).toBe(1);
  });

  it('leaves the probe chain (the filter canary) empty when the match works', async () => {
    const { mode, fake } = modeWith(nfacctTool(toolRunner().runner));
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(getChain(fake.snapshot(), 'filter', 'KUBE-PROXY-CANARY')?.rules ?? []).toEqual([]);
  });

  it('without the seam (no nfacct tool on the node) writes the rules without counters and has nothing to read', async () => {
    const { mode, rules } = modeWith(undefined);
    await mode.sync(snapshot, { periodic: false, previous: null });
    expect(rules().forward).toBe('-m conntrack --ctstate INVALID -j DROP');
    expect(rules().nodePorts).toHaveLength(1);
    expect(mode.inspect.nfacctPackets).toBeUndefined();
  });
});
