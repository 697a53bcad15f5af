import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

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
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
