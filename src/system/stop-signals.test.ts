import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listenForStop } from './stop-signals.ts';

const EXEC = new URL('./exec.ts', import.meta.url).pathname;
const STOP = new URL('./stop-signals.ts', import.meta.url).pathname;

/**
 * A process that, like the agent, runs a child through the execa runner and
 * waits for a stop signal, listening the given way; SIGTERM is sent while
 * the child runs. Resolves with how the process ended and what it printed.
 */
async function sigtermWhileChildRuns(listen: string): Promise<{ code: number | null; signal: string | null; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'kpt-signals-'));
  const script = join(dir, 'proc.ts');
  await writeFile(
    script,
    `
    import { createExecaRunner } from ${JSON.stringify(EXEC)};
    import { listenForStop } from ${JSON.stringify(STOP)};
    const stopped: Promise<string> = ${listen};
    const child = createExecaRunner().run('sleep', ['2']);
    process.stdout.write('child running\\n');
    const signal = await stopped;
    process.stdout.write('stopping on ' + signal + '\\n');
    const r = await child; // the agent lets a running restore finish
    process.stdout.write('child exited ' + r.code + '\\n');
    process.exit(0);
  `,
  );
  const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const t0 = Date.now();
  while (!out.includes('child running') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // the child is spawned and signal-exit's listener installed
  proc.kill('SIGTERM');
  return { ...(await ended), out };
}

describe('stop signals', () => {
  it(
    'a process.once listener (the earlier main.ts) dies by SIGTERM while an execa child runs: signal-exit re-raises it',
    { timeout: 30_000 },
    async () => {
      const r = await sigtermWhileChildRuns(`new Promise((resolve) => process.once('SIGTERM', () => resolve('SIGTERM')))`);
      expect(r.signal).toBe('SIGTERM');
      expect(r.out).not.toContain('child exited');
    },
  );

  it('listenForStop keeps its listener, so the same SIGTERM stops the process cleanly and the child finishes', { timeout: 30_000 }, async () => {
    const r = await sigtermWhileChildRuns(`listenForStop(process).stopped`);
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.out).toContain('stopping on SIGTERM');
    expect(r.out).toContain('child exited 0');
  });

  it('resolves with the first signal and reports later ones without resolving again', async () => {
    const source = new EventEmitter();
    const repeats: string[] = [];
    const l = listenForStop(source, (s) => repeats.push(s));
    source.emit('SIGINT');
    source.emit('SIGTERM');
    expect(await l.stopped).toBe('SIGINT');
    expect(repeats).toEqual(['SIGTERM']);
    expect(source.listenerCount('SIGTERM')).toBe(1);
    l.dispose();
    expect(source.listenerCount('SIGTERM') + source.listenerCount('SIGINT')).toBe(0);
  });
});
