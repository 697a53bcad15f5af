import { afterEach, describe, expect, it } from 'vitest';
import { createExecaRunner } from '../src/system/exec.ts';
import { createNetnsOps } from '../src/system/netns.ts';
import { detectBackend } from './backend-detect.ts';

const runner = createExecaRunner();
const net = createNetnsOps({ runner });
const NS = 'kptdetect-node';

describe('detectBackend (in a namespace)', () => {
  afterEach(async () => net.deleteNamespace(NS));

  async function fresh(): Promise<void> {
    await net.sweepNamespaces('kptdetect');
    await net.addNamespace(NS);
  }
  const load = (bin: string, text: string) => runner.run(bin, ['--noflush'], { input: text, netns: NS });

  it('defaults to nft on an empty node', async () => {
    await fresh();
    expect((await detectBackend({ runner: createExecaRunner({ netns: NS }) })).backend).toBe('nft');
  });

  it('follows the backend that holds the rules', async () => {
    await fresh();
    await load('iptables-legacy-restore', '*filter\n:FOO - [0:0]\n-A INPUT -j FOO\n-A FOO -j RETURN\nCOMMIT\n');
    expect(await detectBackend({ runner: createExecaRunner({ netns: NS }) })).toMatchObject({ backend: 'legacy' });
  });

  it("trusts kubelet's hint chain in the nft mangle table", async () => {
    await fresh();
    await load('iptables-legacy-restore', '*filter\n:FOO - [0:0]\n-A INPUT -j FOO\n-A FOO -j RETURN\nCOMMIT\n');
    await load('iptables-nft-restore', '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n');
    expect(await detectBackend({ runner: createExecaRunner({ netns: NS }) })).toMatchObject({
      backend: 'nft',
      reason: expect.stringContaining('hint'),
    });
  });
});
