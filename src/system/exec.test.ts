import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure } from '../../proxier/exec.ts';
import { createExecaRunner, TIMEOUT_EXIT_CODE } from './exec.ts';

const runner = createExecaRunner();
const node = process.execPath;
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'exec-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createExecaRunner', () => {
  it('returns stdout, stderr and the exit code of a failing command without throwing', async () => {
    const r = await runner.run(node, ['-e', 'process.stdout.write("out\\n"); process.stderr.write("err"); process.exit(3)']);
    expect(r).toEqual({ code: 3, stdout: 'out\n', stderr: 'err' });
  });

  it('passes arguments verbatim, without a shell', async () => {
    const r = await runner.run(node, ['-e', 'console.log(JSON.stringify(process.argv.slice(1)))', '$HOME', 'a b', '*', ';']);
    expect(JSON.parse(r.stdout)).toEqual(['$HOME', 'a b', '*', ';']);
  });

  it('writes input to stdin', async () => {
    const r = await runner.run('cat', [], { input: '*filter\nCOMMIT\n' });
    expect(r).toEqual({ code: 0, stdout: '*filter\nCOMMIT\n', stderr: '' });
  });

  it('gives an empty stdin when there is no input (never inherits the terminal)', async () => {
    const r = await runner.run('cat', [], { timeoutMs: 5000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('handles outputs far larger than a pipe buffer (30 MB iptables-save)', async () => {
    const r = await runner.run(node, ['-e', 'process.stdout.write("x".repeat(30 * 1024 * 1024))']);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(30 * 1024 * 1024);
  });

  it('throws, naming the binary, when it cannot be started', async () => {
    await expect(runner.run('kube-proxy-ts-no-such-binary', ['x'])).rejects.toThrow(/cannot start "kube-proxy-ts-no-such-binary": ENOENT/);
    const notExecutable = join(dir, 'not-executable');
    await writeFile(notExecutable, 'data\n', { mode: 0o644 });
    await expect(runner.run(notExecutable, [])).rejects.toThrow(/cannot start ".*not-executable": EACCES/);
  });

  it('kills a command at its timeout and reports code 124', async () => {
    const started = Date.now();
    const r = await runner.run('sleep', ['10'], { timeoutMs: 200 });
    expect(r.code).toBe(TIMEOUT_EXIT_CODE);
    expect(r.stderr).toMatch(/sleep timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('runs netns commands as `ip netns exec NS cmd args`', async () => {
    // "echo" stands in for ip: it prints the argv the runner built.
    const fake = createExecaRunner({ ipCommand: 'echo' });
    const r = await fake.run('iptables-save', ['-t', 'nat'], { netns: 'kpt-node-1' });
    expect(r.stdout).toBe('netns exec kpt-node-1 iptables-save -t nat\n');
  });

  it('throws when ip netns exec cannot start the inner command', async () => {
    // A stand-in for ip that fails the way `ip netns exec NS cmd` does when execvp fails.
    const fakeIp = join(dir, 'fake-ip');
    const script = [
      'const cmd = process.argv[5] === "no-such-tool" ? "no-such-tool" : "child-of-the-tool";',
      'process.stderr.write(`exec of "${cmd}" failed: No such file or directory\\n`);',
      'process.exit(1);',
    ].join('\n');
    await writeFile(fakeIp, `#!${node}\n${script}\n`);
    await chmod(fakeIp, 0o755);
    const viaFake = createExecaRunner({ ipCommand: fakeIp });
    await expect(viaFake.run('no-such-tool', ['-L'], { netns: 'ns1' })).rejects.toThrow(
      /cannot start "no-such-tool" in network namespace ns1: No such file or directory/,
    );
    // Only the inner command's own exec failure counts: the same message about another program is a result.
    const r = await viaFake.run('other-tool', [], { netns: 'ns1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/child-of-the-tool/);
  });
});

describe('describeFailure', () => {
  it('names the command, the namespace, the code and the error output', () => {
    const text = describeFailure('ip', ['link', 'set', 'eth0', 'up'], { code: 1, stdout: '', stderr: 'Cannot find device "eth0"\n' }, 'ns1');
    expect(text).toBe('ip link set eth0 up (netns ns1) exited with code 1: Cannot find device "eth0"');
  });
});
