// Lint policy. Beyond type-aware correctness it enforces two architectural boundaries:
// pure code (src/manifests, src/render) reaches no I/O, clock, randomness or environment, and
// only the composition root and src/main.ts may touch the process.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'fs',
  'fs/promises',
  'child_process',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'os',
  'crypto',
  'process',
  'worker_threads',
  'cluster',
  'readline',
  'timers',
  'timers/promises',
  'perf_hooks',
  'v8',
  'vm',
];

const pureImportBans = {
  paths: [
    ...ioModules.flatMap((name) => [
      { name, message: 'pure code takes effects as parameters' },
      { name: `node:${name}`, message: 'pure code takes effects as parameters' },
    ]),
    { name: 'execa', message: 'pure code starts no processes' },
    { name: 'nats', message: 'pure code does no networking' },
    { name: '@kubernetes/client-node', message: 'pure code does no networking' },
    { name: 'chalk', message: 'pure code does not style terminal output' },
    { name: 'ora', message: 'pure code does not drive the terminal' },
  ],
  patterns: [
    { group: ['**/runtime', '**/runtime/**'], message: 'pure code never imports src/runtime' },
    { group: ['**/commands', '**/commands/**'], message: 'pure code never imports commands' },
  ],
};

const pureGlobalBans = [
  { name: 'process', message: 'pure code receives configuration as parameters' },
  { name: 'console', message: 'pure code returns warnings as data' },
  { name: 'setTimeout', message: 'pure code has no clock' },
  { name: 'setInterval', message: 'pure code has no clock' },
  { name: 'setImmediate', message: 'pure code has no clock' },
  { name: 'fetch', message: 'pure code does no networking' },
  { name: 'performance', message: 'pure code has no clock' },
  { name: 'crypto', message: 'pure code has no randomness' },
];

const pureSyntaxBans = [
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'pure code has no clock: take the time as a parameter',
  },
  {
    selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
    message: 'pure code has no clock: take the time as a parameter',
  },
  {
    selector: "MemberExpression[object.name='Math'][property.name='random']",
    message: 'pure code has no randomness: take ids as parameters',
  },
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.cluster/',
      '.cluster-test/',
      '.cluster-test-*/',
      'coverage/',
      'test/golden/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      complexity: ['error', 15],
      'max-depth': ['error', 4],
      'max-params': ['error', 5],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'exit', message: 'return an exit code from main()' },
        { object: 'process', property: 'stdout', message: 'write through deps.io' },
        { object: 'process', property: 'stderr', message: 'write through deps.io' },
      ],
    },
  },
  {
    files: ['src/manifests/**/*.ts', 'src/render/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', pureImportBans],
      'no-restricted-globals': ['error', ...pureGlobalBans],
      'no-restricted-syntax': ['error', ...pureSyntaxBans],
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      'no-console': 'off',
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['bin/**/*.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
