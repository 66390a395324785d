// Seven tiers, one runner. Each tier is a Jest project so `--selectProjects` runs one of them.
'use strict';

const common = {
  testEnvironment: 'node',
  transform: { '\\.[cm]?[jt]s$': '<rootDir>/test/support/esbuild-transform.cjs' },
  transformIgnorePatterns: [],
  // execa's dependency unicorn-magic exports only an "import" condition, which Jest's
  // require-based resolver does not follow; point it at the file the condition names.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
};

// The files that start a cluster of their own instead of using the shared test cluster: the
// demo (`npm run demo`, instance 6), the registry test (instance 3) and the cluster life-cycle
// test (instance 2). They are a tier of their own, so they can run beside the tiers that share
// the test cluster.
const OWN_CLUSTER = [
  'test/e2e/demo.test.ts',
  'test/cluster/registry.test.ts',
  'test/cluster/lifecycle.test.ts',
];
// The e2e files whose mesh carries one protocol each. They are a tier of their own too, so
// `npm test` can run them beside the cluster tier on a second test cluster.
const PROTOCOLS = ['websocket', 'tcp-protocols', 'grpc', 'headless', 'egress', 'tracing'].map(
  (name) => `test/e2e/${name}.test.ts`,
);
const ignored = (paths) => paths.map((path) => `/${path.replace(/\./g, '\\.')}$`);
const ownClusterIgnored = ignored(OWN_CLUSTER);

module.exports = {
  testSequencer: '<rootDir>/test/support/tier-sequencer.cjs',
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/golden/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-integration.ts'],
    },
    {
      ...common,
      displayName: 'cluster',
      testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...ownClusterIgnored],
      globalSetup: '<rootDir>/test/cluster/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-cluster.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...ownClusterIgnored, ...ignored(PROTOCOLS)],
      // The whole mesh runs on the cluster tier's test cluster.
      globalSetup: '<rootDir>/test/cluster/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/support/global-teardown.ts',
      setupFilesAfterEnv: [
        '<rootDir>/test/support/timeout-e2e.ts',
        '<rootDir>/test/support/after-other-run.ts',
      ],
    },
    {
      ...common,
      displayName: 'e2e-protocols',
      testMatch: PROTOCOLS.map((path) => `<rootDir>/${path}`),
      // On the test cluster of the Jest run it is in (NMK_TEST_CLUSTER_INSTANCE).
      globalSetup: '<rootDir>/test/cluster/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-e2e.ts'],
    },
    {
      ...common,
      displayName: 'own-cluster',
      testMatch: OWN_CLUSTER.map((path) => `<rootDir>/${path}`),
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-e2e.ts'],
    },
    {
      ...common,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      // The mesh broken and mended on the same test cluster; each test sets its own bound.
      globalSetup: '<rootDir>/test/cluster/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/support/global-teardown.ts',
      setupFilesAfterEnv: [
        '<rootDir>/test/support/timeout-e2e.ts',
        '<rootDir>/test/support/after-other-run.ts',
      ],
    },
    {
      ...common,
      displayName: 'adversarial',
      testMatch: ['<rootDir>/test/adversarial/**/*.test.ts'],
      // Hostile tenants against the mesh on the same test cluster; each test sets its own bound.
      globalSetup: '<rootDir>/test/cluster/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-e2e.ts'],
    },
  ],
};
