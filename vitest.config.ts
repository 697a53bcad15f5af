import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * The e2e tests start Node on a .ts file hundreds of times (the agent and the CLI as `node src/main.ts`, the traffic
 * client and pod servers in test/netns): each such start loads Node's type stripper (amaro, ~0.2 s) unless the compile
 * cache is on before the first module loads, which NODE_COMPILE_CACHE in the environment does. It names the directory
 * src/entry.js and src/main.ts use anyway, so what the agent under test caches is unchanged; only the stripping of the
 * entry file itself is saved.
 */
const COMPILE_CACHE = new URL('./node_modules/.cache/kube-proxy-ts-compile', import.meta.url).pathname;

// Two projects, run one after the other: fast unit tests (no root, no
// namespaces) run in parallel, two files at a time at least (vitest's default
// of one worker fewer than the cores would run them one by one on a 2-core
// machine); end-to-end tests (*.e2e.test.ts) need root, create their own
// network namespaces and run one file at a time, alone, so they never compete
// for the cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          maxWorkers: Math.max(2, availableParallelism() - 1),
          include: ['{build,src,proxier,iptables,nftables,userspace,test,manifests,examples}/**/*.test.ts'],
          exclude: ['**/*.e2e.test.ts', 'node_modules/**'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['{build,src,proxier,iptables,nftables,userspace,test,manifests,examples}/**/*.e2e.test.ts'],
          exclude: ['node_modules/**'],
          fileParallelism: false,
          env: { NODE_COMPILE_CACHE: COMPILE_CACHE },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
