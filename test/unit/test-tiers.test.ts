// The tiers `npm test` runs: every Jest project has an npm script that selects it, and the
// sequencer runs each process's tiers in the order scripts/test-all.mjs relies on (the README
// describes it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require(join(root, 'jest.config.cjs')) as {
  testSequencer: string;
  projects: { displayName: string; testMatch: string[] }[];
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { byTier } = require(join(root, 'test', 'support', 'tier-sequencer.cjs')) as {
  byTier: <T>(tests: T[]) => T[];
};

const fakeTest = (tier: string, path: string) => ({
  path,
  context: { config: { displayName: { name: tier } } },
});

describe('the test tiers', () => {
  it('orders each process by tier, e2e then faults last, keeping the order within a tier', () => {
    const tests = [
      fakeTest('faults', 'faults.test.ts'),
      fakeTest('e2e', 'traffic.test.ts'),
      fakeTest('cluster', 'deploy.test.ts'),
      fakeTest('adversarial', 'adversarial.test.ts'),
      fakeTest('cluster', 'helm.test.ts'),
      fakeTest('e2e-protocols', 'grpc.test.ts'),
      fakeTest('own-cluster', 'demo.test.ts'),
      fakeTest('integration', 'images.test.ts'),
      fakeTest('unit', 'top.test.ts'),
    ];
    expect(byTier(tests).map((test) => test.path)).toEqual([
      'deploy.test.ts',
      'helm.test.ts',
      'images.test.ts',
      'top.test.ts',
      'adversarial.test.ts',
      'grpc.test.ts',
      'demo.test.ts',
      'traffic.test.ts',
      'faults.test.ts',
    ]);
    expect(config.testSequencer).toBe('<rootDir>/test/support/tier-sequencer.cjs');
  });

  it('holds the e2e and faults tiers, and only them, until the other process ends', () => {
    const waits = (name: string) =>
      (
        config.projects.find((each) => each.displayName === name) as {
          setupFilesAfterEnv?: string[];
        }
      ).setupFilesAfterEnv?.includes('<rootDir>/test/support/after-other-run.ts') ?? false;
    expect(
      config.projects.filter((each) => waits(each.displayName)).map((each) => each.displayName),
    ).toEqual(['e2e', 'faults']);
    const script = readFileSync(join(root, 'scripts', 'test-all.mjs'), 'utf8');
    expect(script).toMatch(/NMK_TEST_AFTER_PID: String\(first\.pid\)/);
  });

  it('has an npm script selecting every project', () => {
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    const selected = Object.entries(scripts)
      .filter(([name]) => name.startsWith('test:'))
      .flatMap(([, command]) =>
        /--selectProjects ([a-z][\w-]*(?: [a-z][\w-]*)*)/.exec(command)?.[1]?.split(' '),
      )
      .filter((name) => name !== undefined && name !== '');
    expect(new Set(selected)).toEqual(new Set(config.projects.map((each) => each.displayName)));
  });
});
