import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The v3 SDK warns in every worker that it will drop Node 20 in 2027; engines covers that.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integ',
          include: ['test/integ/**/*.integ.test.ts'],
          // Starts one local stack (emulators + handlers) for every integration test file.
          globalSetup: ['test/setup/global-setup.ts'],
          testTimeout: 30_000,
          // Tests that start a stack of their own wait for DynamoDB Local's JVM.
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'reliability',
          include: ['test/reliability/**/*.integ.test.ts'],
          // Integration tests too (the same shared local stack as integ), kept apart because they
          // are long: soak, faults, bad input, auth attacks, key guessing, revocation (RELIABILITY.md).
          globalSetup: ['test/setup/global-setup.ts'],
          testTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e.test.ts'],
          // Builds the page if it is stale, then runs `npm start`'s stack in a child process.
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          // Each file synthesizes the CDK app (esbuild bundling, cdk-nag) once per configuration.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'bench-smoke',
          include: ['test/bench/**/*.test.ts'],
          // `npm run bench` in small (bench/lib/run-bench.ts, profile smoke): starts a local stack of
          // its own, puts load on it, and checks counts only, never timings. It runs after the other
          // projects (a later group), so its load cannot slow their tests down.
          sequence: { groupOrder: 1 },
          testTimeout: 600_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
