/**
 * Packet tracer over a Ruleset: follows the first packet of a connection
 * through the hooks netfilter would run it through, rule by rule, with real
 * jumps, gotos, RETURN and chain policies, forking at every
 * `statistic --mode random` so that each reachable endpoint is reported
 * with its probability.
 *
 * Path: every table at each hook, in the kernel's priority order (raw -300,
 * mangle -150, nat DNAT -100, filter 0, security 50, nat SNAT 100), so that
 * another tool's raw/mangle rules (a pre-DNAT drop, a mark rewrite, CT
 * --notrack) act where they do on the node:
 *   external: PREROUTING (raw, mangle, nat); destination local -> INPUT
 *             (mangle, filter, security, nat), else FORWARD (mangle, filter,
 *             security) -> POSTROUTING (mangle, nat)
 *   local:    OUTPUT (raw, mangle, nat, filter, security) -> POSTROUTING
 *             (mangle, nat); a local destination then comes back in through
 *             lo: PREROUTING (raw, mangle) -> INPUT (mangle, filter,
 *             security); its NAT was settled on the way out (conntrack keeps
 *             the binding), so nat PREROUTING and INPUT do not run again
 * An untracked packet (raw's CT --notrack) skips every nat chain. With the
 * node's routes, `-o` in OUTPUT, FORWARD and POSTROUTING tests the device the
 * route to the (translated) destination names, lo for a local one.
 * A built-in chain missing from the Ruleset is empty with policy ACCEPT.
 */
import type { TraceBranch, TracePacket, TraceResult } from '../proxier/trace-result.ts';
import { routeLookup, type Route, type RouteLookup } from '../proxier/route-table.ts';
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
  /** The node's routes (its main table): what `-o` tests. Without them `-o` is assumed to match, with a warning. */
  readonly routes?: readonly Route[];
}

/** Hooks where a packet has an output interface (iptables refuses `-o` elsewhere). */
const ROUTED_HOOKS = new Set(['OUTPUT', 'FORWARD', 'POSTROUTING']);

const STEP_BUDGET = 1_000_000;

interface Walk {
  readonly chains: (table: string, chain: string) => { rules: readonly string[]; policy: string } | null;
  readonly words: (rule: string) => RuleWords | null;
  readonly ctx: MatchContext;
  readonly localAddresses: readonly string[];
  readonly maxDepth: number;
  readonly route: RouteLookup | null;
  readonly warn: (m: string) => void;
}

/** Runs one hook (a built-in chain of one table) for a run; returns the runs after it (forks included). */
function runHook(w: Walk, start: Run, table: string, hook: string, ctAttached: boolean): Run[] {
  const done: Run[] = [];
  const outInterface = ROUTED_HOOKS.has(hook) ? (w.route?.(start.pkt.dst) ?? null) : null;
  const pkt = { ...start.pkt, outInterface };
  const work: Run[] = [{ ...start, pkt, stack: [{ chain: hook, index: 0, base: true }] }];
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
        ctAttached,
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
    ctx: { isLocal, recentHits: new Set(opts.recentHits ?? []), routed: opts.routes !== undefined, warn },
    localAddresses: opts.localAddresses,
    maxDepth: opts.maxDepth ?? 64,
    route: opts.routes === undefined ? null : routeLookup(opts.routes, isLocal),
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
    outInterface: null,
    mark: packet.mark ?? 0,
    dnatted: false,
    untracked: false,
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
  /** Runs `chain` of each table in turn (the hook's priority order) for the runs still undecided that `when` selects. */
  const hook = (runs: Run[], chain: string, tables: readonly string[], when: (r: Run) => boolean = () => true, ctAttached = false): Run[] => {
    for (const table of tables) {
      runs = runs.flatMap((r) =>
        r.verdict !== null || !when(r) || (table === 'nat' && r.pkt.untracked)
          ? [r]
          : runHook(w, { ...r, budget: { used: 0 } }, table, chain, ctAttached),
      );
    }
    return runs;
  };
  const toLocal = (r: Run): boolean => isLocal(r.pkt.dst);
  const forwarded = (r: Run): boolean => !toLocal(r);
  let runs = [first];
  if (packet.origin === 'external') {
    runs = hook(runs, 'PREROUTING', ['raw', 'mangle', 'nat']);
    runs = hook(runs, 'INPUT', ['mangle', 'filter', 'security', 'nat'], toLocal);
    runs = hook(runs, 'FORWARD', ['mangle', 'filter', 'security'], forwarded);
    runs = hook(runs, 'POSTROUTING', ['mangle', 'nat'], forwarded);
  } else {
    runs = hook(runs, 'OUTPUT', ['raw', 'mangle', 'nat', 'filter', 'security']);
    runs = hook(runs, 'POSTROUTING', ['mangle', 'nat']);
    // Back in through lo with its connection (and NAT binding) attached.
    runs = runs.map((r) => (toLocal(r) ? { ...r, pkt: { ...r.pkt, inInterface: 'lo' } } : r));
    runs = hook(runs, 'PREROUTING', ['raw', 'mangle'], toLocal, true);
    runs = hook(runs, 'INPUT', ['mangle', 'filter', 'security'], toLocal, true);
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
