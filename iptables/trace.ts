/**
 * Packet tracer over a Ruleset: follows the first packet of a connection
 * through the hooks netfilter would run it through, rule by rule, with real
 * jumps, gotos, RETURN and chain policies, forking at every
 * `statistic --mode random` so that each reachable endpoint is reported
 * with its probability.
 *
 * Path (raw and mangle are not modelled, nor nat INPUT):
 *   external: nat PREROUTING; destination local -> filter INPUT,
 *             else filter FORWARD -> nat POSTROUTING
 *   local:    nat OUTPUT -> filter OUTPUT -> nat POSTROUTING
 *             (-> filter INPUT when the destination is local, via loopback)
 * A built-in chain missing from the Ruleset is empty with policy ACCEPT.
 */
import type { TraceBranch, TracePacket, TraceResult } from '../proxier/trace-result.ts';
import { endpointString } from '../proxier/types.ts';
import { parseRuleWords, tokenizeRule, type RuleWords } from './rule-words.ts';
import type { Ruleset } from './ruleset.ts';
import { localAddressTest, ruleMatches, type MatchContext, type PacketState } from './trace-match.ts';
import { applyTarget, type Run, type TraceStep } from './trace-target.ts';

export interface TraceOptions {
  /** The node's addresses (loopback is always local). */
  readonly localAddresses: readonly string[];
  /** `recent` list names holding the client (ClientIP affinity already established). */
  readonly recentHits?: readonly string[];
  /** Nesting limit for jumps (default 64). */
  readonly maxDepth?: number;
}

const STEP_BUDGET = 1_000_000;

interface Walk {
  readonly chains: (table: string, chain: string) => { rules: readonly string[]; policy: string } | null;
  readonly words: (rule: string) => RuleWords | null;
  readonly ctx: MatchContext;
  readonly localAddresses: readonly string[];
  readonly maxDepth: number;
  readonly warn: (m: string) => void;
}

/** Runs one hook (a built-in chain of one table) for a run; returns the runs after it (forks included). */
function runHook(w: Walk, start: Run, table: string, hook: string): Run[] {
  const done: Run[] = [];
  const work: Run[] = [{ ...start, stack: [{ chain: hook, index: 0, base: true }] }];
  while (work.length > 0) {
    const run = work.pop()!;
    for (;;) {
      if (++run.budget.used > STEP_BUDGET) {
        w.warn(`trace stopped after ${STEP_BUDGET} rule evaluations in ${table} ${hook} (jump loop?)`);
        done.push({ ...run, verdict: 'DROP', end: 'trace stopped: jump loop' });
        break;
      }
      const frame = run.stack[run.stack.length - 1]!;
      const chain = w.chains(table, frame.chain);
      const rules = chain?.rules ?? [];
      if (frame.index >= rules.length) {
        run.stack = run.stack.slice(0, -1);
        if (!frame.base) continue;
        const policy = w.chains(table, hook)?.policy ?? 'ACCEPT';
        const verdict = policy === 'DROP' ? 'DROP' : null;
        done.push({ ...run, verdict, end: `policy ${policy} of ${table} ${hook}` });
        break;
      }
      const index = frame.index;
      run.stack = [...run.stack.slice(0, -1), { ...frame, index: index + 1 }];
      const rule = rules[index]!;
      const words = w.words(rule);
      if (words === null) continue;
      const p = ruleMatches(words, run.pkt, w.ctx);
      if (p <= 0) continue;
      if (p < 1) {
        work.push({ ...run, probability: run.probability * (1 - p), steps: [...run.steps] });
        run.probability *= p;
      }
      run.steps = [...run.steps, { table, chain: frame.chain, index: index + 1, rule }];
      const where = `${table} ${frame.chain} rule ${index + 1}`;
      const next = applyTarget(run, words, {
        table,
        hook,
        where,
        maxDepth: w.maxDepth,
        warn: w.warn,
        localAddresses: w.localAddresses,
        isChain: (name) => {
          const c = w.chains(table, name);
          return c !== null && c.policy === '-';
        },
      });
      if (next === 'continue') continue;
      done.push(run);
      break;
    }
  }
  return done;
}

/** Traces the first packet of a connection through the ruleset. */
export function trace(ruleset: Ruleset, packet: TracePacket, opts: TraceOptions): TraceResult<TraceStep> {
  const warnings: string[] = [];
  const warn = (m: string): void => void (warnings.includes(m) || warnings.push(m));
  const index = new Map<string, { rules: readonly string[]; policy: string }>();
  for (const t of ruleset.tables) for (const c of t.chains) index.set(`${t.name}\u0000${c.name}`, { rules: c.rules, policy: c.policy ?? '-' });
  const parsed = new Map<string, RuleWords | null>();
  const isLocal = localAddressTest(opts.localAddresses);
  const w: Walk = {
    chains: (table, chain) => index.get(`${table}\u0000${chain}`) ?? null,
    words: (rule) => {
      let words = parsed.get(rule);
      if (words === undefined) {
        try {
          words = parseRuleWords(tokenizeRule(rule));
        } catch (e) {
          warn(`rule not understood, skipped: ${rule} (${(e as Error).message})`);
          words = null;
        }
        parsed.set(rule, words);
      }
      return words;
    },
    ctx: { isLocal, recentHits: new Set(opts.recentHits ?? []), warn },
    localAddresses: opts.localAddresses,
    maxDepth: opts.maxDepth ?? 64,
    warn,
  };
  const pkt: PacketState = {
    src: packet.src,
    dst: packet.dst,
    protocol: packet.protocol,
    dport: packet.dport,
    sport: packet.sport ?? null,
    origin: packet.origin,
    inInterface: packet.origin === 'local' ? null : (packet.inInterface ?? null),
    mark: packet.mark ?? 0,
    dnatted: false,
  };
  const first: Run = {
    probability: 1,
    pkt,
    steps: [],
    stack: [],
    dnat: null,
    redirected: false,
    masquerade: false,
    verdict: null,
    end: '',
    budget: { used: 0 },
  };
  const hook = (runs: Run[], table: string, chain: string, when: (r: Run) => boolean = () => true): Run[] =>
    runs.flatMap((r) => (r.verdict !== null || !when(r) ? [r] : runHook(w, { ...r, budget: { used: 0 } }, table, chain)));
  const toLocal = (r: Run): boolean => isLocal(r.pkt.dst);
  let runs = [first];
  if (packet.origin === 'external') {
    runs = hook(runs, 'nat', 'PREROUTING');
    runs = hook(runs, 'filter', 'INPUT', toLocal);
    runs = hook(runs, 'filter', 'FORWARD', (r) => !toLocal(r));
    runs = hook(runs, 'nat', 'POSTROUTING', (r) => !toLocal(r));
  } else {
    runs = hook(runs, 'nat', 'OUTPUT');
    runs = hook(runs, 'filter', 'OUTPUT');
    runs = hook(runs, 'nat', 'POSTROUTING');
    runs = hook(runs, 'filter', 'INPUT', toLocal);
  }
  const branches: TraceBranch<TraceStep>[] = runs.map((r) => ({
    probability: r.probability,
    verdict: r.verdict ?? 'ACCEPT',
    dnat: r.dnat,
    redirected: r.redirected,
    masquerade: r.masquerade,
    steps: r.steps,
    end: r.end,
  }));
  const endpoints = [...new Set(branches.flatMap((b) => (b.dnat ? [endpointString(b.dnat)] : [])))];
  const verdicts = new Set(branches.map((b) => b.verdict));
  const masq = new Set(branches.map((b) => b.masquerade));
  return {
    branches,
    endpoints,
    verdict: verdicts.size === 1 ? branches[0]!.verdict : 'MIXED',
    masquerade: masq.size === 1 ? branches[0]!.masquerade : 'mixed',
    warnings,
  };
}
