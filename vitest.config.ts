import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The chaos suite (test/chaos) runs with `npm run chaos`: its fast variants still take over
    // ten minutes here and several of them expose open defects (see issue 4's note).
    exclude: ['test/chaos/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    allowOnly: false,
    // The JSON report lets .ci/run print the plain "N passed, N failed" summary line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
