import { defineConfig } from 'vitest/config';

// `npm run chaos`: the full chaos scenarios (long kill loops, 1,000,000-line memory bound).
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    allowOnly: false,
    reporters: ['default'],
    // A real PostgreSQL for the cluster scenarios (the same throw-away server as npm test).
    globalSetup: ['test/global-setup.ts'],
  },
});
