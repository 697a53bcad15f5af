/**
 * The nfacct counters of upstream's iptables mode (pkg/proxy/metrics, pkg/proxy/util/nfacct): two extended
 * accounting objects its rules count packets into, read back as the
 * kubeproxy_iptables_ct_state_invalid_dropped_packets_total and
 * kubeproxy_iptables_localhost_nodeports_accepted_packets_total metrics. Operators read them before moving a node to
 * the nftables mode, which has neither the INVALID drop nor localhost NodePorts.
 *
 * Upstream speaks nfnetlink_acct itself; this seam runs Debian's `nfacct` tool (argv arrays, the command runner).
 * Counters belong to the network namespace, as the rules do.
 */
import { describeFailure, type CommandRunner } from '../proxier/exec.ts';
import { KUBE_PROXY_CANARY } from './chains.ts';
import type { Iptables } from './iptables.ts';

/** Counts the packets the KUBE-FORWARD INVALID rule drops. */
export const CT_STATE_INVALID_DROPPED = 'ct_state_invalid_dropped_pkts';
/** Counts the packets accepted on 127.0.0.0/8 NodePorts (IPv4, localhost NodePorts on). */
export const LOCALHOST_NODEPORTS_ACCEPTED = 'localhost_nps_accepted_pkts';
export const NFACCT_COUNTERS: readonly string[] = [CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED];

export interface NfacctCounter {
  readonly name: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface Nfacct {
  /**
   * Creates the counter unless it exists (upstream's Ensure: a get, then an add). Rejects with the reason it cannot,
   * an NfacctToolMissing when the tool itself is missing.
   */
  ensure(name: string): Promise<void>;
  /** Every counter of the network namespace. */
  list(): Promise<NfacctCounter[]>;
}

const TIMEOUT_MS = 5000;

/** The tool itself could not be started (not installed): nothing can be counted on this node. */
export class NfacctToolMissing extends Error {
  constructor(detail: string) {
    super(`cannot start nfacct: ${detail}`);
    this.name = 'NfacctToolMissing';
  }
}

export function nfacctTool(runner: CommandRunner): Nfacct {
  const run = async (args: readonly string[]) => {
    let r;
    try {
      r = await runner.run('nfacct', args, { timeoutMs: TIMEOUT_MS });
    } catch (err) {
      throw new NfacctToolMissing((err as Error).message);
    }
    // 127: a shell's "command not found", as some runners say it.
    if (r.code === 127) throw new NfacctToolMissing(describeFailure('nfacct', args, r, runner.netns));
    return r;
  };
  return {
    async ensure(name) {
      if ((await run(['get', name])).code === 0) return;
      const added = await run(['add', name]);
      // EBUSY: another writer added it between the two (the tool's add refuses an existing name).
      if (added.code !== 0 && (await run(['get', name])).code !== 0) throw new Error(describeFailure('nfacct', ['add', name], added, runner.netns));
    },
    async list() {
      const r = await run(['list']);
      if (r.code !== 0) throw new Error(describeFailure('nfacct', ['list'], r, runner.netns));
      return parseNfacctList(r.stdout);
    },
  };
}

const LINE = /^\{ pkts = (\d+), bytes = (\d+) \} = (\S+);$/;

/** `nfacct list` output: `{ pkts = 00000000000000000012, bytes = 00000000000000000840 } = name;` per counter. */
export function parseNfacctList(text: string): NfacctCounter[] {
  const out: NfacctCounter[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line.trim());
    if (m) out.push({ name: m[3]!, packets: Number(m[1]), bytes: Number(m[2]) });
  }
  return out;
}

export interface EnsureResult {
  /** The counters that exist now. */
  readonly made: ReadonlySet<string>;
  /** Why a counter could not be made, one line each. */
  readonly failures: readonly { readonly counter: string; readonly error: string }[];
  /** The tool could not be started: nothing can be counted on this node. */
  readonly toolMissing: string | null;
}

/** Upstream's Ensure of each counter, on every full sync: a counter that cannot be made is left out of the rules. */
export async function ensureCounters(nfacct: Nfacct, names: readonly string[] = NFACCT_COUNTERS): Promise<EnsureResult> {
  const made = new Set<string>();
  const failures: { counter: string; error: string }[] = [];
  for (const counter of names) {
    try {
      await nfacct.ensure(counter);
      made.add(counter);
    } catch (err) {
      if (err instanceof NfacctToolMissing) return { made, failures, toolMissing: err.message };
      failures.push({ counter, error: (err as Error).message });
    }
  }
  return { made, failures, toolMissing: null };
}

/**
 * Whether rules can match an nfacct counter: a node can have nfnetlink_acct (the counters are made) without the
 * xt_nfacct match, and then every restore carrying `-m nfacct` fails whole (kubernetes#142068: upstream's probe checks
 * only the first, so no Service rule is written at all). A rule is written into the filter table's KUBE-PROXY-CANARY
 * (ours, jumped to by nothing) and the chain emptied again. Null when the match works, else why it does not.
 */
export async function probeNfacctMatch(ipt: Iptables, counter: string): Promise<string | null> {
  const chain = KUBE_PROXY_CANARY;
  try {
    await ipt.restore(`*filter\n:${chain} - [0:0]\n-A ${chain} -m nfacct --nfacct-name ${counter} -j RETURN\nCOMMIT\n`, NOFLUSH);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await ipt.restore(`*filter\n:${chain} - [0:0]\nCOMMIT\n`, NOFLUSH).catch(() => undefined);
  }
}

const NOFLUSH = { noflush: true, counters: false } as const;
