import { defineConfig } from 'vitest/config';

/**
 * The chaos scenarios CI runs (issue 4): a kill -9 loop of 12 kills, the upstream fault matrix,
 * the malformed-input fuzz with a fixed seed, the isolation matrix and the secrets canary. They
 * run one file at a time after everything else, so a kill loop never competes with the unit
 * tests for the two cores. `npm run chaos` runs every scenario, long variants included.
 */
const CI_CHAOS = [
  'test/chaos/kill-loop.test.ts',
  'test/chaos/fault-matrix.test.ts',
  'test/chaos/fuzz.test.ts',
  'test/chaos/isolation.test.ts',
  'test/chaos/canary.test.ts',
  'test/chaos/hostile-requests.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    allowOnly: false,
    // The JSON report lets .ci/run print the plain "N passed, N failed" summary line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['test/chaos/**', 'node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'chaos-ci',
          include: CI_CHAOS,
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 300_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
