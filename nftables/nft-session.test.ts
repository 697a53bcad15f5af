import { describe, expect, it } from 'vitest';
import { NftError } from './errors.ts';
import { NftSession, type NftChild, type NftChildEvents, type NftLauncher } from './nft-session.ts';

const PATH = '/run/kpt-test/transaction.nft';
const JUNK = (marker: string) => `Error: syntax error, unexpected junk\n${marker}\n^\n`;

/** nft -i as the session sees it: each `include` line runs the staged text; `behave` says what nft printed or that it died. */
class FakeLauncher implements NftLauncher {
  readonly children: { args: readonly string[]; env: Readonly<Record<string, string>>; sent: string[]; events: NftChildEvents; closed: boolean }[] =
    [];
  staged = '';
  disposed = false;
  chunk = 1 << 20;
  behave: (text: string) => string | 'die' = () => '';
  /** A listing's answer: stdout (one line per command), stderr before the marker, or 'die'. */
  answer: (commands: string[]) => { stdout: string; stderr?: string } | 'die' = (cs) => ({ stdout: cs.map((c) => `{"for":"${c}"}\n`).join('') });
  /** Deliver a listing's stdout after the marker's stderr (the two pipes race). */
  stdoutLast = false;

  start(_cmd: string, args: readonly string[], env: Readonly<Record<string, string>>, events: NftChildEvents): NftChild {
    const c = { args, env, sent: [] as string[], events, closed: false };
    this.children.push(c);
    return {
      send: (line) => {
        c.sent.push(line);
        if (!line.startsWith('include ')) return this.list(line, events);
        const [include, marker] = line.trim().split('\n');
        expect(include).toBe(`include "${PATH}"`);
        const out = this.behave(this.staged);
        setImmediate(() => {
          if (out === 'die') return events.exit('killed by SIGKILL');
          const all = out + JUNK(marker!);
          for (let i = 0; i < all.length; i += this.chunk) events.stderr(all.slice(i, i + this.chunk));
        });
      },
      close: () => {
        c.closed = true;
      },
    };
  }

  private list(line: string, events: NftChildEvents): void {
    const lines = line.trim().split('\n');
    const marker = lines.pop()!;
    const out = this.answer(lines);
    setImmediate(() => {
      if (out === 'die') return events.exit('killed by SIGKILL');
      const split = (all: string, to: (chunk: string) => void) => {
        for (let i = 0; i < all.length; i += this.chunk) to(all.slice(i, i + this.chunk));
      };
      const stdout = () => split(out.stdout, (x) => events.stdout(x));
      if (!this.stdoutLast) stdout();
      split((out.stderr ?? '') + JUNK(marker), (x) => events.stderr(x));
      if (this.stdoutLast) stdout();
    });
  }

  async stage(text: string): Promise<string> {
    this.staged = text;
    return PATH;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

describe('NftSession (one nft -i, transactions staged and included)', () => {
  it('runs transactions one at a time through one process started with -i, no history file and huge-page malloc', async () => {
    const l = new FakeLauncher();
    const s = new NftSession(l);
    const seen: string[] = [];
    l.behave = (t) => (seen.push(t), '');
    await Promise.all([s.run('add table ip kube-proxy\n'), s.run('add chain ip kube-proxy a\n'), s.run('')]);
    expect(seen).toEqual(['add table ip kube-proxy\n', 'add chain ip kube-proxy a\n']);
    expect(l.children).toHaveLength(1);
    expect(l.children[0]!.args).toEqual(['-t', '-j', '-i']);
    expect(l.children[0]!.env).toMatchObject({ HOME: '/nonexistent', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
    await s.close();
    expect(l.children[0]!.closed).toBe(true);
    expect(l.disposed).toBe(true);
  });

  it('reports a failed transaction as nft -f does (kind, input line), however the output is split, and goes on', async () => {
    const l = new FakeLauncher();
    l.chunk = 1;
    const s = new NftSession(l);
    const text = 'add table ip kube-proxy\nadd chain ip kube-proxy a\nadd rule ip kube-proxy nope counter\n';
    l.behave = () =>
      `In file included from <cmdline>:1:1-40:\n${PATH}:3:24-27: Error: Could not process rule: No such file or directory\nadd rule ip kube-proxy nope counter\n                       ^^^^\n`;
    const err = (await s.run(text).catch((e: unknown) => e)) as NftError;
    expect(err).toBeInstanceOf(NftError);
    expect(err.kind).toBe('not-found');
    expect(err.line).toBe(3);
    expect(err.lineText).toBe('add rule ip kube-proxy nope counter');
    expect(err.stderr).not.toContain('kube-proxy-sync');
    l.behave = () => '';
    await s.run(text);
    expect(l.children).toHaveLength(1);
  });

  it('fails a transaction whose process died (it may or may not have been applied) and starts a new process for the next (upstream: sync fully after a failure)', async () => {
    const l = new FakeLauncher();
    const s = new NftSession(l);
    await s.run('add table ip kube-proxy\n');
    l.behave = () => 'die';
    const err = (await s.run('add chain ip kube-proxy a\n').catch((e: unknown) => e)) as NftError;
    expect(err).toBeInstanceOf(NftError);
    expect(err.kind).toBe('other');
    expect(err.message).toMatch(/exited during a transaction \(killed by SIGKILL\); it may or may not have been applied/);
    l.behave = () => '';
    await s.run('add chain ip kube-proxy a\n');
    expect(l.children).toHaveLength(2);
    expect(s.starts).toBe(2);
  });

  it('lists through the same process: one JSON line per command, in order, however stdout and stderr are split and interleaved', async () => {
    for (const [chunk, stdoutLast] of [
      [1 << 20, false],
      [1, false],
      [7, true],
    ] as const) {
      const l = new FakeLauncher();
      l.chunk = chunk;
      l.stdoutLast = stdoutLast;
      const s = new NftSession(l);
      await s.run('add table ip kube-proxy\n');
      const docs = await s.list(['list chains ip', 'list sets ip', 'list maps ip']);
      expect(docs).toEqual(['{"for":"list chains ip"}', '{"for":"list sets ip"}', '{"for":"list maps ip"}']);
      // The commands are typed, not staged: the staged file still holds the transaction.
      expect(l.children[0]!.sent[1]).toMatch(/^list chains ip\nlist sets ip\nlist maps ip\n%kube-proxy-sync-\d+\n$/);
      expect(l.staged).toBe('add table ip kube-proxy\n');
      await s.run('add chain ip kube-proxy a\n');
      expect(await s.list(['list chains ip6'])).toEqual(['{"for":"list chains ip6"}']);
      expect(l.children).toHaveLength(1);
    }
  });

  it("fails a refused listing with nft's error and answers the next request from a new process (a late part of the answer cannot leak into it)", async () => {
    const l = new FakeLauncher();
    const s = new NftSession(l);
    l.answer = () => ({ stdout: '{"partial":', stderr: 'Error: Could not process rule: Operation not permitted\nlist chains ip\n^^^^^^^^^^^^^^\n' });
    const err = (await s.list(['list chains ip']).catch((e: unknown) => e)) as NftError;
    expect(err).toBeInstanceOf(NftError);
    expect(err.kind).toBe('other');
    expect(err.message).toContain('Operation not permitted');
    expect(err.message).toContain('nft -t -j -i (list chains ip)');
    expect(l.children[0]!.closed).toBe(true);
    l.answer = () => ({ stdout: '{"ok":1}\n' });
    expect(await s.list(['list chains ip'])).toEqual(['{"ok":1}']);
    expect(l.children).toHaveLength(2);
    l.answer = () => 'die';
    const died = (await s.list(['list chains ip']).catch((e: unknown) => e)) as NftError;
    expect(died.message).toMatch(/exited during a listing \(killed by SIGKILL\)/);
    await s.run('add table ip kube-proxy\n');
    expect(l.children).toHaveLength(3);
  });

  it('starts a fresh process after restartAfter transactions (libedit keeps every line it read)', async () => {
    const l = new FakeLauncher();
    const s = new NftSession(l, { restartAfter: 2 });
    for (let i = 0; i < 5; i++) await s.run(`add chain ip kube-proxy c${i}\n`);
    expect(l.children.map((c) => c.sent.length)).toEqual([2, 2, 1]);
    expect(l.children.map((c) => c.closed)).toEqual([true, true, false]);
  });

  it('a process that exits between transactions is replaced without failing the next one', async () => {
    const l = new FakeLauncher();
    const s = new NftSession(l);
    await s.run('add table ip kube-proxy\n');
    l.children[0]!.events.exit('exit code 0');
    await s.run('add chain ip kube-proxy a\n');
    expect(l.children).toHaveLength(2);
  });
  it("calls whileApplying with each transaction's length once nft has it whole, before nft's answer; not for listings", async () => {
    const l = new FakeLauncher();
    const events: string[] = [];
    let answers = 0;
    const s = new NftSession(l, {
      whileApplying: (bytes) =>
        events.push(`while ${bytes}: ${l.children[0]!.sent.length} sent, ${answers} answered, staged ${JSON.stringify(l.staged)}`),
    });
    await s.run('add table ip kube-proxy\n').then(() => answers++);
    await s.run('');
    await s.list(['list chains ip']);
    l.behave = () => 'Error: Could not process rule: No such file or directory\n';
    await expect(s.run('add chain ip kube-proxy a\n').finally(() => answers++)).rejects.toThrow(NftError);
    expect(events).toEqual([
      'while 24: 1 sent, 0 answered, staged "add table ip kube-proxy\\n"',
      'while 26: 3 sent, 1 answered, staged "add chain ip kube-proxy a\\n"',
    ]);
  });

  it('a whileApplying that throws fails its transaction only after nft answered; the next one runs as usual', async () => {
    const l = new FakeLauncher();
    let boom = true;
    const s = new NftSession(l, {
      whileApplying: () => {
        if (boom) throw new Error('hook failed');
      },
    });
    await expect(s.run('add table ip kube-proxy\n')).rejects.toThrow('hook failed');
    boom = false;
    await s.run('add chain ip kube-proxy a\n');
    expect(l.children).toHaveLength(1);
    expect(l.children[0]!.sent).toHaveLength(2);
  });
});
