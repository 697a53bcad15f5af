/**
 * Packet tracer over an nftables table (rendered, or parsed from a live
 * `nft -j list`): follows the first packet of a connection through the base
 * chains of each hook in the order the kernel runs them (priority; nat chains at the nat core's), with jumps, gotos, returns, verdict
 * maps, `numgen` (forking into every endpoint with its probability, whether
 * it picks an endpoint chain or, generation B, the DNAT target itself),
 * affinity sets, `fib ... type local`, marks, DNAT (and the `ct status dnat`
 * it leaves for generation B's hairpin masquerade) and masquerade, and reports the
 * endpoints reached, masquerading and any drop or reject. Upstream's
 * helpers_test.go nftablesTracer, as a module.
 *
 * Hooks (as netfilter runs them for a new connection):
 *   external: prerouting; destination local -> input, else forward -> postrouting
 *   local:    output -> postrouting (-> input when the destination is local, via loopback)
 * An accept ends one base chain; the next base chain of the hook still runs. A packet that runs off a base
 * chain's end gets the chain's policy: accept, as we write them, or a `policy drop` set from outside (a live table).
 */
import type { TraceBranch, TracePacket, TraceResult } from '../proxier/trace-result.ts';
import type { BaseChainSpec, Hook, NftChain, NftElement, NftTable } from './model.ts';
import { parseRule } from './rule-text.ts';
import type { Rule, Verdict } from './rule-ast.ts';
import { canonicalAddress, isLocal, type EvalContext, type PacketState } from './trace-eval.ts';
import { applyRule, type Run, type TraceStep } from './trace-rule.ts';

export interface TraceOptions {
  /** The node's addresses (loopback is always local): `fib ... type local`. */
  readonly localAddresses: readonly string[];
  /** Affinity sets already holding the client (ClientIP affinity established). */
  readonly affinityHits?: readonly string[];
  /** Nesting limit for jumps (default 64). */
  readonly maxDepth?: number;
}

const STEP_BUDGET = 100_000;

export function traceNft(table: NftTable, packet: TracePacket, options: TraceOptions): TraceResult<TraceStep> {
  const warnings: string[] = [];
  const warn = (m: string) => {
    if (!warnings.includes(m)) warnings.push(m);
  };
  // Each chain's rules read once: a packed chain (the render cache's) splits its text on every read of `rules`.
  const chains = new Map(table.chains.map((c) => [c.name, { name: c.name, base: c.base, comment: c.comment, rules: c.rules }]));
  const parsed = new Map<string, Rule | null>();
  const rule = (text: string): Rule | null => {
    if (!parsed.has(text)) {
      try {
        parsed.set(text, parseRule(text));
      } catch (err) {
        warn((err as Error).message);
        parsed.set(text, null);
      }
    }
    return parsed.get(text)!;
  };
  const indexes = new Map<string, Map<string, NftElement> | null>();
  const ctx: EvalContext = {
    table,
    localAddresses: options.localAddresses,
    affinityHits: new Set(options.affinityHits ?? []),
    warn,
    index: (name) => {
      if (!indexes.has(name)) {
        const set = table.sets.find((s) => s.name === name);
        indexes.set(name, set ? new Map((set.elements ?? []).map((e) => [e.key, e])) : null);
      }
      return indexes.get(name)!;
    },
  };
  const maxDepth = options.maxDepth ?? 64;
  const budget = { used: 0 };

  const hookChains = (hook: Hook) =>
    table.chains.filter((c) => c.base?.hook === hook).sort((a, b) => runsAt(a.base!) - runsAt(b.base!) || a.base!.priority - b.base!.priority);

  /** Runs every base chain of a hook; returns the runs still alive plus finished ones. */
  const runHook = (runs: Run[], hook: Hook): Run[] => {
    let current = runs;
    for (const base of hookChains(hook)) {
      const next: Run[] = [];
      for (const r of current) next.push(...(r.verdict ? [r] : runChain(r, base)));
      current = next;
    }
    return current;
  };

  interface Frame {
    chain: NftChain;
    index: number;
  }

  const runChain = (start: Run, base: NftChain): Run[] => {
    const done: Run[] = [];
    const work: { run: Run; stack: Frame[] }[] = [{ run: start, stack: [{ chain: base, index: 0 }] }];
    while (work.length > 0) {
      const { run, stack } = work.pop()!;
      let finished = false;
      while (!finished) {
        if (++budget.used > STEP_BUDGET) {
          warn(`trace stopped after ${STEP_BUDGET} rule evaluations (jump loop?)`);
          done.push({ ...run, verdict: 'DROP', end: 'trace stopped: jump loop' });
          break;
        }
        const frame = stack[stack.length - 1];
        if (!frame) {
          // Off the base chain's end (or a return from it): its policy decides; ours is accept, drop is from outside.
          if (base.base?.policy === 'drop') {
            run.verdict = 'DROP';
            run.end = `${base.name}: end of the base chain, policy drop`;
          }
          done.push(run);
          break;
        }
        if (frame.index >= frame.chain.rules.length) {
          stack.pop();
          continue;
        }
        const index = frame.index++;
        const text = frame.chain.rules[index]!;
        const r = rule(text);
        if (r === null) continue;
        const step: TraceStep = { chain: frame.chain.name, index: index + 1, rule: text };
        const outcome = applyRule(r, run, step, ctx);
        for (const fork of outcome.forks) {
          const forked = followVerdict(fork.verdict, [...stack.map((f) => ({ ...f }))], fork.run);
          if (forked === null) done.push(fork.run);
          else work.push({ run: fork.run, stack: forked });
        }
        if (outcome.kind === 'nomatch') continue;
        run.steps.push(step);
        if (outcome.kind === 'continue') continue;
        if (outcome.kind !== 'verdict') {
          done.push(run);
          finished = true;
          continue;
        }
        const next = followVerdict(outcome.verdict, stack, run);
        if (next === null) {
          done.push(run);
          finished = true;
        }
      }
    }
    return done;
  };

  /** Applies jump/goto/return/accept/drop to the stack; null when a verdict ended the base chain. */
  const followVerdict = (v: Verdict, stack: Frame[], run: Run): Frame[] | null => {
    switch (v.k) {
      case 'continue':
        return stack;
      case 'accept':
        return null;
      case 'drop':
        run.verdict = 'DROP';
        run.end = endOf(run, 'drop');
        return null;
      case 'return':
        stack.pop();
        return stack; // empty: the base chain's policy applies (above)
      case 'jump':
      case 'goto': {
        const target = chains.get(v.target);
        if (!target) {
          warn(`${v.k} to missing chain ${v.target}`);
          run.verdict = 'DROP';
          run.end = `${v.k} to missing chain ${v.target}`;
          return null;
        }
        if (stack.length >= maxDepth) {
          warn(`jump depth above ${maxDepth} at ${v.target}`);
          run.verdict = 'DROP';
          return null;
        }
        if (v.k === 'goto') stack.pop();
        stack.push({ chain: target, index: 0 });
        return stack;
      }
    }
  };

  const endOf = (run: Run, what: string) => {
    const s = run.steps.at(-1);
    return s ? `${s.chain} rule ${s.index}: ${what}` : what;
  };

  const pkt: PacketState = {
    family: table.family,
    src: canonicalAddress(packet.src),
    dst: canonicalAddress(packet.dst),
    protocol: packet.protocol,
    dport: packet.dport,
    sport: packet.sport ?? 40000,
    inInterface: packet.origin === 'local' ? null : (packet.inInterface ?? null),
    mark: packet.mark ?? 0,
    dnatted: false,
  };
  let runs: Run[] = [{ probability: 1, pkt, steps: [], dnat: null, masquerade: false, verdict: null, end: '', dnatAt: '', masqueradeAt: '' }];
  if (packet.origin === 'external') {
    runs = runHook(runs, 'prerouting');
    const local = runs.filter((r) => !r.verdict && isLocal(ctx, r.pkt.dst));
    const routed = runs.filter((r) => r.verdict || !isLocal(ctx, r.pkt.dst));
    runs = [...runHook(local, 'input'), ...runHook(runHook(routed, 'forward'), 'postrouting')];
  } else {
    runs = runHook(runHook(runs, 'output'), 'postrouting');
    const local = runs.filter((r) => !r.verdict && isLocal(ctx, r.pkt.dst));
    runs = [...runs.filter((r) => !local.includes(r)), ...runHook(local, 'input')];
  }

  const branches: TraceBranch<TraceStep>[] = runs.map((r) => ({
    probability: r.probability,
    verdict: r.verdict ?? 'ACCEPT',
    dnat: r.dnat,
    redirected: false,
    masquerade: r.masquerade,
    steps: r.steps,
    end: r.verdict ? r.end || r.verdict : accepted(r),
  }));
  const endpoints: string[] = [];
  for (const b of branches) {
    if (b.verdict !== 'ACCEPT' || !b.dnat) continue;
    const ep = b.dnat.ip.includes(':') ? `[${b.dnat.ip}]:${b.dnat.port}` : `${b.dnat.ip}:${b.dnat.port}`;
    if (!endpoints.includes(ep)) endpoints.push(ep);
  }
  const verdicts = new Set(branches.map((b) => b.verdict));
  const masq = new Set(branches.filter((b) => b.verdict === 'ACCEPT').map((b) => b.masquerade));
  return {
    branches,
    endpoints,
    verdict: verdicts.size === 1 ? [...verdicts][0]! : 'MIXED',
    masquerade: masq.size === 0 ? false : masq.size === 1 ? [...masq][0]! : 'mixed',
    warnings,
  };
}

/**
 * The nat core's priority per hook (NF_IP_PRI_NAT_DST / NF_IP_PRI_NAT_SRC, the same for IPv6): nf_tables registers a
 * nat chain with the nat core (nf_nat_register_fn), which runs every nat chain of the hook from its own hook at this
 * priority, ordered among themselves by theirs. So a nat chain re-created at -150 still runs after a filter chain at
 * -110 (checked on the kernel: test/cli-nftables.e2e.test.ts); the kernel refuses nat chains at -200 or lower.
 */
const NAT_CORE_PRIORITY: Readonly<Record<Hook, number>> = { prerouting: -100, output: -100, input: 100, postrouting: 100, forward: 0 };

/** Where a base chain runs among the hook's base chains. */
function runsAt(base: BaseChainSpec): number {
  return base.type === 'nat' ? NAT_CORE_PRIORITY[base.hook] : base.priority;
}

function accepted(r: Run): string {
  const parts = ['accepted'];
  if (r.dnat) parts.push(`DNAT by ${r.dnatAt}`);
  if (r.masquerade) parts.push(`masqueraded by ${r.masqueradeAt}`);
  return parts.length === 1 ? 'accepted: no rule changed the packet' : parts.join('; ');
}
