import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { agentHeapFlags, AGENT_HEAP_GROWING_PERCENT } from './agent-heap.ts';

describe('agentHeapFlags', () => {
  const HEAP = `--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`;
  const TIERS = ['--no-maglev', '--no-turbofan'];

  it('fixes the heap growing factor when node was given none, and the top tier in the rule-writing modes only', () => {
    expect(agentHeapFlags(['--max-semi-space-size=2'], 'iptables')).toEqual([HEAP, ...TIERS]);
    expect(agentHeapFlags(['--max-semi-space-size=2'], 'nftables')).toEqual([HEAP, ...TIERS]);
    // The userspace proxy's data path is hot code: there the optimizing tiers off halved the connections per second.
    expect(agentHeapFlags(['--max-semi-space-size=2'], 'userspace')).toEqual([HEAP]);
  });

  it("leaves node's own --heap-growing-percent and tier flags (--max-opt, --[no-]maglev, --[no-]turbofan; either spelling) alone", () => {
    expect(agentHeapFlags(['--max-semi-space-size=2', '--heap-growing-percent=50'], 'iptables')).toEqual(TIERS);
    expect(agentHeapFlags(['--heap_growing_percent=10', '--max_opt=3'], 'nftables')).toEqual([]);
    expect(agentHeapFlags(['--max-opt=2'], 'iptables')).toEqual([HEAP]);
    expect(agentHeapFlags(['--maglev'], 'iptables')).toEqual([HEAP]);
    expect(agentHeapFlags(['--no_turbofan'], 'nftables')).toEqual([HEAP]);
    expect(agentHeapFlags(['--heap-growing-percentile=1', '--max-optimize=1'], 'iptables')).toEqual([HEAP, ...TIERS]);
  });

  it('the tier flags set at run time take effect: a hot function is no longer optimized (its --trace-opt lines)', () => {
    const optimized = (tune: 'iptables' | 'userspace' | null) => {
      const code = `
        import { tuneAgentHeap } from ${JSON.stringify(new URL('./agent-heap.ts', import.meta.url).pathname)};
        if (${JSON.stringify(tune)}) tuneAgentHeap(process.execArgv, ${JSON.stringify(tune)});
        function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 7) % 13; return s; }
        let t = 0;
        for (let k = 0; k < 3000; k++) t += hot(1000);
        console.log(t);`;
      const r = spawnSync(process.execPath, ['--trace-opt', '--input-type=module', '-e', code], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return /\[completed compiling [^\n]*JSFunction hot [^\n]*\(target (MAGLEV|TURBOFAN)/.test(r.stdout);
    };
    expect(optimized(null)).toBe(true);
    expect(optimized('userspace')).toBe(true);
    expect(optimized('iptables')).toBe(false);
  }, 60_000);

  it("takes effect when set at run time: V8's next heap limit uses the fixed factor (its --trace-gc-verbose line)", () => {
    // A child builds ~30 MB of live objects and collects; V8 prints the factor it grew the limit by.
    const factor = (tune: boolean, nodeFlags: string[] = []) => {
      const code = `
        import { tuneAgentHeap } from ${JSON.stringify(new URL('./agent-heap.ts', import.meta.url).pathname)};
        if (${tune}) tuneAgentHeap(process.execArgv, 'iptables');
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

describe('exposeFullCollection (tuneAgentHeap in the nftables mode)', () => {
  it("gives the nftables agent V8's full collection (a --trace-gc Mark-Compact line, the garbage freed), and no global gc", () => {
    const code = `
      import { tuneAgentHeap } from ${JSON.stringify(new URL('./agent-heap.ts', import.meta.url).pathname)};
      if (tuneAgentHeap(process.execArgv, 'iptables').collectGarbage !== undefined) throw new Error('a collector outside the nftables mode');
      const collect = tuneAgentHeap(process.execArgv, 'nftables').collectGarbage;
      let garbage = [];
      for (let i = 0; i < 200; i++) garbage.push(Array.from({ length: 2000 }, (_, k) => ({ k, i })));
      const before = process.memoryUsage().heapUsed;
      garbage = null;
      console.log('COLLECT');
      collect();
      console.log(JSON.stringify({ global: typeof globalThis.gc, freedMiB: (before - process.memoryUsage().heapUsed) / 1048576 }));`;
    const r = spawnSync(process.execPath, ['--trace-gc', '--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const after = r.stdout.slice(r.stdout.indexOf('COLLECT'));
    expect(after).toMatch(/Mark-Compact[^\n]*testing/);
    const result = JSON.parse(after.trim().split('\n').pop()!) as { global: string; freedMiB: number };
    expect(result.global).toBe('undefined');
    expect(result.freedMiB).toBeGreaterThan(10);
  }, 60_000);
});
