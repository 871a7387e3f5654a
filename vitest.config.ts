import { defineConfig } from 'vitest/config';

/**
 * Three projects, so the fast tests run alone (`npm run test:unit`, `test:integration`, `test:e2e`):
 * - unit: pure functions, no sockets;
 * - integration: real SDK clients in-process against the emulators on 127.0.0.1;
 * - e2e: the built binary (`dist/cli.js`) over stdio or HTTP, packaging, the Inspector and the conformance suite.
 */
const E2E = [
  'test/audit-failclosed.test.ts',
  'test/auth-cli.test.ts',
  'test/bin-bundle.test.ts',
  'test/config-claude.test.ts',
  'test/config-mistakes.test.ts',
  'test/conformance.test.ts',
  'test/doctor.test.ts',
  'test/doctor-deep.test.ts',
  'test/escape-hatches-stdio.test.ts',
  'test/file-store-multiprocess.test.ts',
  'test/inspector.test.ts',
  'test/latest-tools.test.ts',
  'test/packaging.test.ts',
  'test/protocol-eras.test.ts',
  'test/redis.test.ts',
  'test/transports.test.ts',
  'test/e2e/**/*.test.ts',
];

const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    ...shared,
    // The JSON report is what CI counts (.ci/run prints "N passed, N failed" from it).
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts', 'src/**/*.test.ts'] } },
      { test: { ...shared, name: 'integration', include: ['test/**/*.test.ts'], exclude: ['test/unit/**', ...E2E] } },
      { test: { ...shared, name: 'e2e', include: E2E } },
    ],
  },
});
