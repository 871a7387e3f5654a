import { defineConfig } from 'vitest/config';

/**
 * Three projects, one folder each, so the fast tests run alone (`npm run test:unit`, `test:integration`,
 * `test:e2e`) and a new test file lands in its project by where it is put:
 * - test/unit: pure functions, no sockets;
 * - test/integration: real SDK clients in-process against the emulators on 127.0.0.1;
 * - test/e2e: the built binary (`dist/cli.js`) over stdio or HTTP, packaging, the Inspector and the conformance suite.
 * Shared setup lives in test/helpers/.
 */
const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    ...shared,
    // The JSON report is what CI counts (.ci/run prints "N passed, N failed" from it).
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { ...shared, name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { test: { ...shared, name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
    ],
  },
});
