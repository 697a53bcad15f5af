import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { agentHeapFlags, AGENT_HEAP_GROWING_PERCENT } from './agent-heap.ts';

describe('agentHeapFlags', () => {
  it('fixes the heap growing factor when node was given none', () => {
    expect(agentHeapFlags(['--max-semi-space-size=2'])).toEqual([`--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`]);
  });

  it("leaves node's own --heap-growing-percent (either spelling) alone", () => {
    expect(agentHeapFlags(['--max-semi-space-size=2', '--heap-growing-percent=50'])).toEqual([]);
    expect(agentHeapFlags(['--heap_growing_percent=10'])).toEqual([]);
    expect(agentHeapFlags(['--heap-growing-percentile=1'])).toEqual([`--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`]);
  });

  it("takes effect when set at run time: V8's next heap limit uses the fixed factor (its --trace-gc-verbose line)", () => {
    // A child builds ~30 MB of live objects and collects; V8 prints the factor it grew the limit by.
    const factor = (tune: boolean, nodeFlags: string[] = []) => {
      const code = `
        import { tuneAgentHeap } from ${JSON.stringify(new URL('./agent-heap.ts', import.meta.url).pathname)};
        if (${tune}) tuneAgentHeap(process.execArgv);
        const keep = [];
        for (let i = 0; i < 300; i++) keep.push(Array.from({ length: 2000 }, (_, k) => ({ k, i })));
        globalThis.gc();`;
      const args = ['--expose-gc', '--trace-gc-verbose', ...nodeFlags, '--input-type=module', '-e', code];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const m = /\[HeapController\] factor ([\d.]+)/.exec(r.stdout + r.stderr);
      expect(m, 'no "[HeapController] factor" line in the trace').not.toBeNull();
      return Number(m![1]);
    };
    expect(factor(false)).toBeGreaterThan(1.5); // V8's own choice for a fast-collecting small heap (4.0 here)
    expect(factor(true)).toBe(1.1); // 1.15, printed with one decimal
    expect(factor(true, ['--heap-growing-percent=50'])).toBe(1.5); // node's own flag wins
  }, 60_000);
});
