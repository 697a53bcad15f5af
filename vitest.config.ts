import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (no root, no namespaces) run in parallel;
// end-to-end tests (*.e2e.test.ts) need root, create their own network
// namespaces and run one file at a time so they never compete for the two cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
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
