import { describe, expect, it } from 'vitest';
import { parseSave } from './parse-save.ts';
import { KUBE_PROXY_RULES } from './trace.case.ts';
import { formatProbability, formatTrace } from './trace-format.ts';
import type { TracePacket } from '../proxier/trace-result.ts';
import { trace } from './trace.ts';

const rules = parseSave(KUBE_PROXY_RULES, 'IPv4');
const OPTS = { localAddresses: ['192.168.0.2'] };

describe('formatTrace', () => {
  it('explains each branch: probability, matched rules, outcome, what decided it', () => {
    const hairpin: TracePacket = { src: '10.180.0.1', dst: '172.30.0.41', dport: 80, protocol: 'TCP', origin: 'external', inInterface: 'cbr0' };
    const text = formatTrace(trace(rules, hairpin, OPTS), hairpin);
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'Packet: TCP 10.180.0.1 -> 172.30.0.41:80 (arriving on cbr0)',
      'Verdict: ACCEPT; masquerade: depends on the branch',
      'Endpoints: 10.180.0.1:80, 10.180.0.2:80, 10.180.0.3:80',
    ]);
    expect(lines).toContain('Branch 1 of 3 (33.33%): ACCEPT, DNAT to 10.180.0.1:80, masquerade: yes');
    expect(lines).toContain('Branch 2 of 3 (33.33%): ACCEPT, DNAT to 10.180.0.2:80, masquerade: no');
    expect(lines).toContain('  nat/KUBE-SEP-SXIVWICOYRO3J4NJ #1: -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ');
    expect(lines).toContain('  decided by: nat KUBE-POSTROUTING rule 3: MASQUERADE');
    expect(text).not.toContain('Warnings:');
  });

  it('shows a single path, a rejection and the warnings', () => {
    const p: TracePacket = { src: '10.0.0.5', dst: '172.30.0.43', dport: 80, protocol: 'TCP', origin: 'external' };
    const text = formatTrace(trace(rules, p, OPTS));
    expect(text).toContain('Verdict: REJECT; masquerade: no\nEndpoints: (none: no DNAT)\n\nPath: REJECT, masquerade: no\n');
    expect(text).toContain('  decided by: filter KUBE-SERVICES rule 1: REJECT\n');
    const warned = formatTrace({ ...trace(rules, p, OPTS), warnings: ['-m set is not modelled; assumed to match'] });
    expect(warned.endsWith('Warnings:\n  - -m set is not modelled; assumed to match\n')).toBe(true);
  });

  it('prints probabilities readably', () => {
    expect([1, 0.5, 1 / 3, 1 / 7, 0.00001000008].map(formatProbability)).toEqual(['100%', '50%', '33.33%', '14.29%', '0.001%']);
  });
});
