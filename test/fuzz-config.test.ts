/**
 * A KubeProxyConfiguration as installers write it (kubeadm's config.conf),
 * with one field set to a random value of any YAML type, or removed, or one
 * unknown field added, through the loader every command uses (loadConfig:
 * upstream's Options.loadConfig, then its validation). Each case either
 * loads or exits 2 with an error that names the field; none throws.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { dump, load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../proxier/log.ts';
import { loadConfig } from '../src/cmd/load-config.ts';
import { shortReporter } from './fuzz-oracle.ts';
import { KUBEADM_CONFIG_CONF } from './installer-configs.case.ts';

const SEED = 20261206;
const RUNS = 400;
let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'kpt-fuzz-config-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

type Doc = Record<string, unknown>;

/** Every field of the document, as dotted paths (objects and their leaves). */
function paths(doc: Doc, prefix = ''): string[] {
  return Object.entries(doc).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? [p, ...paths(v as Doc, p)] : [p];
  });
}

const BASE = load(KUBEADM_CONFIG_CONF) as Doc;
/** Fields of kubeadm's file and of upstream's v1alpha1 it leaves out (the nftables section, ipvs and conntrack details). */
const FIELDS = [
  ...paths(BASE).filter((p) => p !== 'kind' && p !== 'apiVersion'),
  'nftables',
  'nftables.masqueradeAll',
  'nftables.masqueradeBit',
  'nftables.minSyncPeriod',
  'nftables.syncPeriod',
  'featureGates',
  'featureGates.MultiCIDRServiceAllocator',
  'logging.verbosity',
  'logging.vmodule',
  'logging.format',
  'logging.options.text.infoBufferSize',
  'logging.options.text.splitStream',
  'healthzBindAddress',
  'mode',
  'detectLocal.clusterCIDRs',
];

const value = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 65536, 2 ** 53, '', 'x', '5s', '-1s', '1h30m', '0.0.0.0:10256', '[::]:0', 'nftables', 'ipvs'),
  fc.integer({ min: -100_000, max: 100_000 }),
  fc.string({ maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('a', 'min', 'json', 'x'), fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null)), { maxKeys: 2 }),
);

const mutation = fc.oneof(
  fc.record({ op: fc.constant('set' as const), path: fc.constantFrom(...FIELDS), value }),
  fc.record({ op: fc.constant('remove' as const), path: fc.constantFrom(...FIELDS) }),
  fc.record({ op: fc.constant('unknown' as const), path: fc.constantFrom('', 'iptables', 'conntrack', 'nftables'), value }),
);

function mutate(doc: Doc, m: { readonly op: string; readonly path: string; readonly value?: unknown }): Doc {
  const copy = structuredClone(doc);
  const parts = m.path === '' ? [] : m.path.split('.');
  let at: Doc = copy;
  for (const p of m.op === 'unknown' ? parts : parts.slice(0, -1)) {
    if (at[p] === null || typeof at[p] !== 'object' || Array.isArray(at[p])) at[p] = {};
    at = at[p] as Doc;
  }
  if (m.op === 'unknown') at['fuzzUnknownField'] = m.value;
  else if (m.op === 'remove') delete at[parts.at(-1)!];
  else at[parts.at(-1)!] = m.value;
  return copy;
}

describe('KubeProxyConfiguration files with one field changed (upstream Options.loadConfig)', () => {
  it(`load, or exit 2 naming the field; never throw (${RUNS} files, seed ${SEED})`, async () => {
    const stats = { loaded: 0, refused: 0, warned: 0 };
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const file = join(dir, 'config.yaml');
        await writeFile(file, dump(mutate(BASE, m)));
        const err: string[] = [];
        const r = await loadConfig(['--config', file], [], {
          stdout: () => undefined,
          stderr: (t) => void err.push(t),
          makeLogger: () => silentLogger(),
        });
        if (typeof r === 'number') {
          stats.refused++;
          expect(r).toBe(2);
          const field = m.op === 'unknown' ? (m.path ? `${m.path}.fuzzUnknownField` : 'fuzzUnknownField') : m.path;
          // The error names the field, or the part of its path that is wrong (a section that is not an object).
          const named = field.split('.').some((_, i, all) => err.join('').includes(all.slice(0, i + 1).join('.')));
          if (!named) throw new Error(`${JSON.stringify(m)}: the error does not name ${field}: ${err.join('')}`);
        } else {
          stats.loaded++;
          if (r.warnings.length) stats.warned++;
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (config): ${RUNS} files, ${stats.loaded} loaded (${stats.warned} with a warning), ${stats.refused} refused`);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.loaded).toBeGreaterThan(0);
  }, 60_000);
});
