import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffTables, isEmptyDiff } from './diff.ts';
import { classifyError, NftError, nftFailure } from './errors.ts';
import { FakeNft } from './fake-nft.ts';
import { SEMANTICS } from './fake-nft.case.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import { planFullSync } from './full-sync.ts';
import { Nft } from './nft.ts';
import { parseNftJson } from './parse-json.ts';
import { renderNftables } from './render.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';

describe("fake nft: the kernel's transaction semantics (cases shared with nft.e2e.test.ts)", () => {
  for (const c of SEMANTICS) {
    it(c.name, async () => {
      const fake = new FakeNft();
      if (c.setup) await fake.run(c.setup);
      const before = fake.dump('ip');
      const err = await fake.run(c.tx).then(
        () => null,
        (e: unknown) => e,
      );
      if (c.expect === 'ok') expect(err).toBeNull();
      else {
        expect(err).toBeInstanceOf(NftError);
        expect((err as NftError).kind).toBe(c.expect);
        if (c.line !== undefined) expect((err as NftError).line).toBe(c.line);
        expect(fake.dump('ip')).toBe(before);
      }
      const dump = fake.dump('ip');
      for (const a of c.after ?? []) {
        if (a.startsWith('!')) expect(dump).not.toContain(a.slice(1));
        else expect(dump).toContain(a);
      }
    });
  }

  // testdata/*-listing*.json: what nft 1.0.6 listed after loading these renders (Linux 6.18).
  for (const [family, nftFamily, file, generation] of [
    ['IPv4', 'ip', 'ipv4-listing.json', 'A'],
    ['IPv6', 'ip6', 'ipv6-listing.json', 'A'],
    ['IPv4', 'ip', 'ipv4-listing-b.json', 'B'],
    ['IPv6', 'ip6', 'ipv6-listing-b.json', 'B'],
  ] as const) {
    it(`takes the full sync of every ${family} rule shape of generation ${generation} and lists what the kernel listed`, async () => {
      const fake = new FakeNft();
      const render = renderNftables(shapesSnapshot(family), { ...shapesOptions(family), generation });
      await fake.run(planFullSync(render, { now: 0, live: null, recreateBaseChains: true }).text);
      const kernel = parseNftJson(readFileSync(new URL(`./testdata/${file}`, import.meta.url), 'utf8'), nftFamily)!;
      const d = diffTables(kernel, await fake.list(nftFamily));
      expect(isEmptyDiff(d), JSON.stringify(d, null, 1)).toBe(true);
    });
  }

  it('check() validates without committing', async () => {
    const fake = new FakeNft();
    await fake.check('add table ip kube-proxy\n');
    expect(await fake.list('ip')).toBeNull();
    await expect(fake.check('add chain ip kube-proxy x\n')).rejects.toThrow(/No such file or directory/);
  });

  it('refuses rules it cannot read, naming the line', async () => {
    const fake = new FakeNft();
    const err = (await fake
      .run('add table ip kube-proxy\nadd chain ip kube-proxy a\nadd rule ip kube-proxy a ip daddr\n')
      .catch((e: unknown) => e)) as NftError;
    expect(err.kind).toBe('syntax');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/expected a value/);
  });
});

describe('nft errors, classified once (knftables error.go)', () => {
  it.each([
    ['/dev/stdin:2:19-19: Error: Could not process rule: Device or resource busy\ndelete chain ip t b\n                  ^\n', 'busy'],
    ['/dev/stdin:1:22-28: Error: Could not process rule: File exists\n', 'exists'],
    ['/dev/stdin:1:22-25: Error: No such file or directory; did you mean chain ‘b2’ in table ip ‘t’?\n', 'not-found'],
    ['Error: Could not process rule: No such file or directory\nlist table ip kube-proxy\n^^^^^^^^^^^^^^^^^^^^^^^^\n', 'not-found'],
    ['/dev/stdin:2:1-58: Error: Could not process rule: Operation not supported\n', 'unsupported'],
    ['/dev/stdin:1:17-25: Error: syntax error, unexpected string\n', 'syntax'],
    ['/dev/stdin:6:17-25: Error: conflicting protocols specified: ip vs. ip6\n', 'syntax'],
    ['Error: Could not process rule: Operation not permitted\n', 'other'],
  ])('%s', (stderr, kind) => expect(classifyError(stderr)).toBe(kind));

  it('points at the failing input line', () => {
    const input = 'add table ip kube-proxy\ndelete chain ip kube-proxy b\n';
    const err = nftFailure('nft -f -', { code: 1, stderr: '/dev/stdin:2:28-28: Error: Could not process rule: Device or resource busy\n' }, input);
    expect(err.line).toBe(2);
    expect(err.lineText).toBe('delete chain ip kube-proxy b');
    expect(err.message).toBe('nft -f - failed: Could not process rule: Device or resource busy (input line 2: delete chain ip kube-proxy b)');
  });
});

describe('Nft adapter over the exec seam', () => {
  function execer(results: Record<string, { code: number; stdout?: string; stderr?: string }>) {
    const calls: { args: readonly string[]; input: string | undefined }[] = [];
    const exec: CommandRunner = {
      async run(cmd, args, opts) {
        calls.push({ args: [cmd, ...args], input: opts?.input });
        const r = results[args.join(' ')] ?? { code: 0 };
        return { code: r.code, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
      },
    };
    return { exec, calls };
  }

  it('runs transactions through stdin with argv arrays, and sends nothing for an empty one', async () => {
    const { exec, calls } = execer({});
    const nft = new Nft(exec);
    await nft.run('');
    await nft.run('add table ip kube-proxy\n');
    await nft.check('add table ip kube-proxy\n');
    expect(calls).toEqual([
      { args: ['nft', '-f', '-'], input: 'add table ip kube-proxy\n' },
      { args: ['nft', '--check', '-f', '-'], input: 'add table ip kube-proxy\n' },
    ]);
  });

  it('reports a missing table as null / false, other failures as errors', async () => {
    const missing = { code: 1, stderr: 'Error: No such file or directory\nlist table ip kube-proxy\n' };
    const { exec } = execer({
      '-j list table ip kube-proxy': missing,
      'delete table ip kube-proxy': missing,
      '-j list table ip6 kube-proxy': { code: 1, stderr: 'Error: Operation not permitted\n' },
    });
    const nft = new Nft(exec);
    expect(await nft.list('ip')).toBeNull();
    expect(await nft.deleteTable('ip')).toBe(false);
    await expect(nft.list('ip6')).rejects.toThrow(/Operation not permitted/);
  });
});
