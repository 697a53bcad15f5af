/** The real entry point in a child process (Node 24), for CLI tests: exit code, stdout, stderr. */
import { execFile } from 'node:child_process';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

export function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
