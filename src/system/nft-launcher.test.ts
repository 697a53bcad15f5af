/**
 * Where the launcher stages transactions: the first candidate directory that can be written, else an error naming
 * each (the agent then applies each transaction with `nft -f -`, src/mode-nftables.ts agentNftChannels).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNftLauncher } from './nft-launcher.ts';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('createNftLauncher staging', () => {
  it('stages in the first directory that can be written, private to this user', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kpt-stage-'));
    const launcher = createNftLauncher({ dirs: ['/dev/null', join(dir, 'missing'), dir] });
    expect(await launcher.prepare()).toBeNull();
    const path = await launcher.stage('add table ip kube-proxy\n');
    expect(dirname(dirname(path))).toBe(dir);
    expect(await readFile(path, 'utf8')).toBe('add table ip kube-proxy\n');
    expect((await stat(dirname(path))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await launcher.dispose();
    await expect(stat(dirname(path))).rejects.toThrow(/ENOENT/);
  });

  it('names every directory it could not use, and why', async () => {
    const launcher = createNftLauncher({ dirs: ['/dev/null', '/nonexistent-kpt'] });
    expect(await launcher.prepare()).toBe('cannot stage nft transactions in /dev/null: ENOTDIR, /nonexistent-kpt: ENOENT');
    await expect(launcher.stage('x')).rejects.toThrow('cannot stage nft transactions in /dev/null: ENOTDIR, /nonexistent-kpt: ENOENT');
  });
});
